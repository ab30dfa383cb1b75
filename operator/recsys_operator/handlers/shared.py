"""Small helpers the handlers share (no kopf decorators here)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from recsys_operator import constants as c
from recsys_operator.builders import Instance
from recsys_operator.config import OperatorConfig
from recsys_operator.errors import InvalidSpecError, KubeApiError
from recsys_operator.kube import Kube, is_subset
from recsys_operator.status import condition, status_patch
from recsys_operator.validation import validate

# Conflicting writes tolerated per status update before giving up (the caller retries later).
STATUS_ATTEMPTS = 5

Logger = logging.Logger | logging.LoggerAdapter[logging.Logger]


def utcnow() -> datetime:
    """Timezone-aware now (patched in tests that need a fixed clock)."""
    return datetime.now(UTC)


def instance_from(body: Mapping[str, Any], config: OperatorConfig) -> Instance:
    """Validated instance from a RecSystem body; raises :class:`InvalidSpecError`."""
    meta = body.get("metadata") or {}
    name = str(meta.get("name", ""))
    spec = validate(name, body.get("spec") or {})
    return Instance(
        name=name,
        namespace=str(meta.get("namespace", "")),
        uid=str(meta.get("uid", "")),
        spec=spec,
        image=spec.image or config.default_image,
    )


def invalid_status(
    error: InvalidSpecError, generation: int, previous: list[Mapping[str, Any]]
) -> dict[str, Any]:
    """Status update reporting an invalid spec (Ready=False, reason InvalidSpec).

    Like every status update here, ``conditions`` holds updates by type for
    :func:`update_status`, not the whole list.
    """
    ready = condition(
        c.COND_READY, False, "InvalidSpec", str(error), generation, utcnow(), previous
    )
    return {
        "phase": "Invalid",
        "observedGeneration": generation,
        "conditions": [ready],
    }


async def update_status(
    kube: Kube, body: Mapping[str, Any], update: Mapping[str, Any]
) -> dict[str, Any] | None:
    """Apply a status update (fields + conditions by type) to the RecSystem; gone → ignored.

    Read-merge-write guarded by ``metadata.resourceVersion``: the patch is computed against
    ``body`` (the caller's copy, saving a GET in the common case) and the API server rejects
    it with 409 if anyone wrote the object since; then the object is read again and the
    update re-applied to what is live. So a concurrent writer's conditions are never lost.
    Returns the status patch sent, or None when nothing changed (or the object is gone).
    """
    meta = body.get("metadata") or {}
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    current: Mapping[str, Any] | None = body
    for attempt in range(1, STATUS_ATTEMPTS + 1):
        if current is None:
            return None
        patch = status_patch(current.get("status") or {}, update)
        if is_subset(patch, current.get("status") or {}):
            return None
        version = (current.get("metadata") or {}).get("resourceVersion")
        guarded: dict[str, Any] = {"status": patch}
        if version:
            guarded["metadata"] = {"resourceVersion": str(version)}
        try:
            await kube.patch(
                c.API_VERSION,
                c.KIND,
                namespace,
                name,
                guarded,
                subresource="status",
                tolerate_missing=True,
            )
            return patch
        except KubeApiError as exc:
            if exc.status != 409 or attempt == STATUS_ATTEMPTS:
                raise
        current = await kube.get(c.API_VERSION, c.KIND, namespace, name)
    return None
