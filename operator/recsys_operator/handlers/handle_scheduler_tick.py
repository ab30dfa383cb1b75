"""The per-RecSystem periodic tick: scheduling, training outcome, readiness, resync."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recsys_operator import constants as c
from recsys_operator.config import OperatorConfig
from recsys_operator.errors import InvalidSpecError
from recsys_operator.handlers.handle_reconcile_recsystem import (
    apply_children,
    readiness,
    status_after_apply,
)
from recsys_operator.handlers.handle_train_tick import schedule_jobs, training_status
from recsys_operator.handlers.shared import Logger, instance_from, update_status, utcnow
from recsys_operator.kube import Kube


async def scheduler_tick(
    namespace: str, name: str, kube: Kube, config: OperatorConfig, logger: Logger, *, resync: bool
) -> dict[str, Any] | None:
    """One tick for one RecSystem; returns the status patch sent (None if nothing to do)."""
    # Read the object fresh: our own previous status patch must be visible to this tick.
    body = await kube.get(c.API_VERSION, c.KIND, namespace, name)
    if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
        return None
    try:
        inst = instance_from(body, config)
    except InvalidSpecError:
        return None  # the create/update handler already reported it in status
    status: Mapping[str, Any] = body.get("status") or {}
    generation = int((body.get("metadata") or {}).get("generation") or 0)
    now = utcnow()

    previous = list(status.get("conditions") or [])
    if resync:
        # Failures are contained per child and reported; training goes on regardless.
        applied = await apply_children(inst, kube, logger)
        ready_update = await status_after_apply(inst, kube, generation, previous, applied)
    else:
        ready_update = await readiness(inst, kube, generation, previous, [])
        # Between resyncs only the create/update handler and resync may claim a generation.
        ready_update.pop("observedGeneration", None)
    _, schedule_patch = await schedule_jobs(inst, kube, status, now, logger)
    training_update = await training_status(
        inst, kube, {**status, **schedule_patch}, generation, now
    )
    update = {
        **ready_update,
        **schedule_patch,
        **training_update,
        "conditions": [*ready_update["conditions"], *training_update["conditions"]],
    }
    return await update_status(kube, body, update)
