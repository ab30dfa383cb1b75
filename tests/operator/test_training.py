"""Trainer scheduling (operator-launched Jobs) and status from a finished Job's pod."""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from recsys_operator import main
from recsys_operator.handlers import handle_scheduler_tick

from tests.operator import emulator
from tests.operator.conftest import Cluster, sample_recsystem

CR = ("recsys.io/v1alpha1", "RecSystem")
JOB = ("batch/v1", "Job")
TRAIN_LABELS = {"app.kubernetes.io/instance": "demo", "app.kubernetes.io/component": "train"}


class Clock:
    """A controllable clock for the scheduler (the operator thread reads it)."""

    def __init__(self) -> None:
        # Starts at the real time: the emulator stamps creationTimestamp from the real clock.
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    fake = Clock()
    monkeypatch.setattr(handle_scheduler_tick, "utcnow", fake)
    yield fake


async def _jobs(cluster: Cluster) -> list[dict[str, Any]]:
    jobs = await cluster.list(*JOB, **TRAIN_LABELS)
    return sorted(jobs, key=lambda j: j["metadata"]["name"])


async def _wait_jobs(cluster: Cluster, count: int) -> list[dict[str, Any]]:
    async def enough() -> list[dict[str, Any]] | None:
        jobs = await _jobs(cluster)
        return jobs if len(jobs) == count else None

    result: list[dict[str, Any]] = await cluster.eventually(enough, message=f"{count} job(s)")
    return result


async def _finish(cluster: Cluster, job: dict[str, Any], *, ok: bool, when: datetime) -> None:
    kind = "Complete" if ok else "Failed"
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    status = {
        "conditions": [{"type": kind, "status": "True", "lastTransitionTime": stamp}],
        "succeeded" if ok else "failed": 1,
    }
    await cluster.patch(*JOB, job["metadata"]["name"], {"status": status}, "status")


async def _still(cluster: Cluster, count: int, seconds: float = 1.0) -> None:
    """Several scheduler ticks (0.2 s each) pass without the job count changing."""
    import asyncio

    await asyncio.sleep(seconds)
    assert len(await _jobs(cluster)) == count


async def test_jobs_launch_at_interval_and_forbid_skips_while_active(
    cluster: Cluster, clock: Clock
) -> None:
    await cluster.create(sample_recsystem(training={"intervalSeconds": 30}))
    [first] = await _wait_jobs(cluster, 1)  # due immediately
    spec = first["spec"]
    assert spec["activeDeadlineSeconds"] == 600
    assert spec["template"]["spec"]["containers"][0]["args"] == ["train", "--once"]
    assert first["metadata"]["ownerReferences"][0]["kind"] == "RecSystem"

    await _still(cluster, 1)  # not due yet
    clock.advance(31)
    await _still(cluster, 1)  # due, but Forbid and the first run is still active
    await _finish(cluster, first, ok=True, when=clock.now)
    await _wait_jobs(cluster, 2)


async def test_suspend_stops_launching(cluster: Cluster, clock: Clock) -> None:
    await cluster.create(sample_recsystem(training={"intervalSeconds": 10, "suspend": True}))
    await _still(cluster, 0)
    clock.advance(60)
    await _still(cluster, 0)
    await cluster.patch(*CR, "demo", {"spec": {"training": {"suspend": False}}})
    await _wait_jobs(cluster, 1)


async def test_replace_policy_deletes_the_active_run(cluster: Cluster, clock: Clock) -> None:
    await cluster.create(
        sample_recsystem(training={"intervalSeconds": 10, "concurrencyPolicy": "Replace"})
    )
    [first] = await _wait_jobs(cluster, 1)
    clock.advance(11)

    async def replaced() -> bool:
        names = [j["metadata"]["name"] for j in await _jobs(cluster)]
        return len(names) == 1 and names[0] != first["metadata"]["name"]

    await cluster.eventually(replaced, message="active run replaced")


async def test_history_limits_prune_old_jobs(cluster: Cluster, clock: Clock) -> None:
    await cluster.create(
        sample_recsystem(
            training={
                "intervalSeconds": 10,
                "successfulJobsHistoryLimit": 1,
                "failedJobsHistoryLimit": 1,
            }
        )
    )
    names: list[str] = []
    for ok in [True, False, True, False]:

        async def fresh() -> dict[str, Any] | None:
            new = [j for j in await _jobs(cluster) if j["metadata"]["name"] not in names]
            return new[0] if new else None

        newest = await cluster.eventually(fresh, message="next job")
        names.append(newest["metadata"]["name"])
        await _finish(cluster, newest, ok=ok, when=clock.now)
        clock.advance(11)

    async def pruned() -> list[str] | None:
        current = [j["metadata"]["name"] for j in await _jobs(cluster)]
        # Newest succeeded (#3) and newest failed (#4) kept, plus the run just launched.
        kept = names[2] in current and names[3] in current
        gone = names[0] not in current and names[1] not in current
        return current if kept and gone and len(current) == 3 else None

    await cluster.eventually(pruned, message="history pruned")


async def test_status_comes_from_the_termination_message(cluster: Cluster, clock: Clock) -> None:
    await cluster.create(sample_recsystem(training={"intervalSeconds": 30}))
    [job] = await _wait_jobs(cluster, 1)
    summary = {
        "version": "v42",
        "model": "lightfm",
        "trained_at": "2026-01-01T12:00:05+00:00",
        "metrics": {"ndcg@10": 0.3125, "precision@10": 0.21},
    }
    await cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{job['metadata']['name']}-abcde",
                "namespace": "shop",
                "labels": {"job-name": job["metadata"]["name"]},
            },
            "spec": {"containers": [{"name": "train", "image": "recsys:test"}]},
            "status": {
                "containerStatuses": [
                    {
                        "name": "train",
                        "state": {
                            "terminated": {
                                "exitCode": 0,
                                "reason": "Completed",
                                "message": json.dumps(summary),
                            }
                        },
                    }
                ]
            },
        }
    )
    await _finish(cluster, job, ok=True, when=clock.now)

    async def surfaced() -> dict[str, Any] | None:
        body = await cluster.get(*CR, "demo")
        status = (body or {}).get("status") or {}
        return status if status.get("modelVersion") == "v42" else None

    status = await cluster.eventually(surfaced, message="model version in status")
    assert status["holdoutNDCG"] == pytest.approx(0.3125)
    assert status["holdoutPrecision"] == pytest.approx(0.21)
    assert status["lastTrainingTime"] == "2026-01-01T12:00:05+00:00"
    conditions = {cond["type"]: cond for cond in status["conditions"]}
    assert conditions["TrainingSucceeded"]["status"] == "True"
    assert conditions["TrainingSucceeded"]["reason"] == "JobSucceeded"
    assert conditions["ModelAvailable"]["status"] == "True"
    assert conditions["TrainingSucceeded"]["observedGeneration"] == 1


async def test_failed_run_sets_training_condition_false(cluster: Cluster, clock: Clock) -> None:
    await cluster.create(sample_recsystem(training={"intervalSeconds": 30}))
    [job] = await _wait_jobs(cluster, 1)
    await _finish(cluster, job, ok=False, when=clock.now)

    async def failed() -> dict[str, Any] | None:
        body = await cluster.get(*CR, "demo")
        for cond in ((body or {}).get("status") or {}).get("conditions") or []:
            if cond["type"] == "TrainingSucceeded" and cond["status"] == "False":
                return dict(cond)
        return None

    cond = await cluster.eventually(failed, message="TrainingSucceeded=False")
    assert cond["reason"] == "JobFailed"
    body = await cluster.get(*CR, "demo")
    model = {c["type"]: c for c in body["status"]["conditions"]}["ModelAvailable"]  # type: ignore[index]
    assert model["status"] == "False"


async def test_schedule_uses_a_native_cronjob(cluster: Cluster, clock: Clock) -> None:
    await cluster.create(
        sample_recsystem(
            training={
                "schedule": "*/5 * * * *",
                "concurrencyPolicy": "Replace",
                "successfulJobsHistoryLimit": 2,
                "failedJobsHistoryLimit": 4,
                "suspend": True,
            }
        )
    )
    cronjob = await cluster.get_eventually("batch/v1", "CronJob", "demo-train")
    assert cronjob["spec"]["schedule"] == "*/5 * * * *"
    assert cronjob["spec"]["suspend"] is True
    assert cronjob["spec"]["concurrencyPolicy"] == "Replace"
    assert cronjob["spec"]["successfulJobsHistoryLimit"] == 2
    assert cronjob["spec"]["failedJobsHistoryLimit"] == 4
    clock.advance(3600)
    await _still(cluster, 0)  # the CronJob controller launches Jobs, not the operator


async def test_a_late_reconcile_status_write_keeps_the_training_conditions(
    cluster: Cluster, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The two status writers race: the create handler's write lands after the scheduler's.

    The create handler is held just before it writes status (with the body it was called
    with, which has no conditions yet) until the scheduler loop has recorded a training
    outcome; every version of the RecSystem stored after that must keep the outcome.
    """
    release, written = threading.Event(), threading.Event()
    real_update_status = main.update_status

    async def held_update_status(*args: Any, **kwargs: Any) -> Any:
        await asyncio.to_thread(release.wait, 60)
        try:
            return await real_update_status(*args, **kwargs)
        finally:
            written.set()

    monkeypatch.setattr(main, "update_status", held_update_status)
    versions: list[dict[str, Any]] = []
    real_emit = cluster.emulator._emit

    async def recording_emit(resource: Any, type_: str, raw: Any) -> None:
        if raw.get("kind") == "RecSystem":
            versions.append(copy.deepcopy(dict(raw)))
        await real_emit(resource, type_, raw)

    monkeypatch.setattr(cluster.emulator, "_emit", recording_emit)

    await cluster.create(sample_recsystem(training={"intervalSeconds": 30}))
    [job] = await _wait_jobs(cluster, 1)
    await _finish(cluster, job, ok=True, when=clock.now)

    def training_condition(body: dict[str, Any] | None) -> dict[str, Any] | None:
        for cond in ((body or {}).get("status") or {}).get("conditions") or []:
            if cond["type"] == "TrainingSucceeded" and cond["status"] == "True":
                return dict(cond)
        return None

    async def recorded() -> dict[str, Any] | None:
        return training_condition(await cluster.get(*CR, "demo"))

    await cluster.eventually(recorded, message="the scheduler to record the training outcome")
    assert not written.is_set()
    release.set()
    assert await asyncio.to_thread(written.wait, 30), "the create handler did not write status"

    async def handled() -> dict[str, Any] | None:
        body = await cluster.get(*CR, "demo")
        return body if ((body or {}).get("status") or {}).get("phase") else None

    body = await cluster.eventually(handled, message="the create handler's status")
    assert {cond["type"] for cond in body["status"]["conditions"]} >= {
        "Ready",
        "TrainingSucceeded",
        "ModelAvailable",
    }
    first = next(i for i, v in enumerate(versions) if training_condition(v) is not None)
    dropped = [
        v["metadata"]["resourceVersion"] for v in versions[first:] if not training_condition(v)
    ]
    assert not dropped, f"TrainingSucceeded dropped in resourceVersion(s) {dropped}"


async def test_scheduling_ignores_the_api_server_clock(
    cluster: Cluster, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jobs are due by the operator's clock: creationTimestamps a minute ahead change nothing.

    The same skew arises in these tests between the fake clock (frozen at fixture setup) and
    the emulator's real-time creationTimestamps when the first Job is created seconds late
    on a loaded machine; that stopped the next launch, and the test timed out.
    """
    ahead = datetime.now(UTC) + timedelta(seconds=60)
    monkeypatch.setattr(emulator, "_now", lambda: ahead.strftime("%Y-%m-%dT%H:%M:%SZ"))
    await cluster.create(sample_recsystem(training={"intervalSeconds": 30}))
    [first] = await _wait_jobs(cluster, 1)
    assert first["metadata"]["creationTimestamp"] > clock.now.isoformat()
    await _finish(cluster, first, ok=True, when=clock.now)
    clock.advance(31)
    await _wait_jobs(cluster, 2)
