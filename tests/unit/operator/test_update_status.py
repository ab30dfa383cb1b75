"""update_status: resourceVersion-guarded read-merge-write of the RecSystem status."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from recsys_operator.errors import KubeApiError
from recsys_operator.handlers.shared import STATUS_ATTEMPTS, update_status
from recsys_operator.kube import Kube
from recsys_operator.status import condition

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class FakeKube:
    """One RecSystem; a patch with a stale resourceVersion gets 409, as from the API server."""

    def __init__(self, status: dict[str, Any], version: int = 7) -> None:
        self.obj: dict[str, Any] = {
            "metadata": {"name": "demo", "namespace": "shop", "resourceVersion": str(version)},
            "status": status,
        }
        self.patches: list[dict[str, Any]] = []
        self.gets = 0
        self.before_patch: list[dict[str, Any]] = []  # writes "someone else" makes first

    def write(self, status: dict[str, Any]) -> None:
        self.obj["status"].update(status)
        meta = self.obj["metadata"]
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)

    async def get(self, *_: Any) -> dict[str, Any]:
        self.gets += 1
        return copy.deepcopy(self.obj)

    async def patch(
        self, api_version: str, kind: str, namespace: str, name: str, patch: Any, **_: Any
    ) -> dict[str, Any]:
        if self.before_patch:
            self.write(self.before_patch.pop(0))
        self.patches.append(patch)
        if patch["metadata"]["resourceVersion"] != self.obj["metadata"]["resourceVersion"]:
            raise KubeApiError(409, "Conflict", "the object has been modified")
        self.write(patch["status"])
        return copy.deepcopy(self.obj)


def _kube(fake: FakeKube) -> Kube:
    return fake  # type: ignore[return-value]


def _types(status: dict[str, Any]) -> list[str]:
    return [cond["type"] for cond in status.get("conditions") or []]


async def test_a_concurrent_write_is_merged_not_overwritten() -> None:
    fake = FakeKube({})
    stale_body = copy.deepcopy(fake.obj)  # what the reconcile handler was called with
    training = condition("TrainingSucceeded", True, "JobSucceeded", "ok", 1, NOW)
    # The scheduler records an outcome after the handler read the object.
    fake.write({"modelVersion": "v42", "conditions": [training]})
    ready = condition("Ready", True, "Available", "ok", 1, NOW)

    sent = await update_status(_kube(fake), stale_body, {"phase": "Ready", "conditions": [ready]})

    assert sent is not None
    assert len(fake.patches) == 2 and fake.gets == 1  # 409 on the stale version, then re-read
    assert fake.obj["status"]["modelVersion"] == "v42"
    assert _types(fake.obj["status"]) == ["Ready", "TrainingSucceeded"]


async def test_no_patch_when_the_live_status_already_matches() -> None:
    ready = condition("Ready", True, "Available", "ok", 1, NOW)
    fake = FakeKube({"phase": "Ready", "conditions": [ready]})
    later = condition("Ready", True, "Available", "ok", 1, datetime(2026, 2, 1, tzinfo=UTC))
    assert await update_status(_kube(fake), fake.obj, {"conditions": [later]}) is None
    assert fake.patches == []


async def test_gives_up_after_repeated_conflicts() -> None:
    fake = FakeKube({})
    fake.before_patch = [{"n": i} for i in range(STATUS_ATTEMPTS)]  # always one write ahead
    with pytest.raises(KubeApiError) as error:
        await update_status(_kube(fake), copy.deepcopy(fake.obj), {"phase": "Ready"})
    assert error.value.status == 409
    assert len(fake.patches) == STATUS_ATTEMPTS
