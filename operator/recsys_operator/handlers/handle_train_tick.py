"""One scheduler tick: launch/prune operator-run training Jobs, surface the last outcome."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from recsys_operator import constants as c
from recsys_operator.builders import Instance
from recsys_operator.builders.common import selector_labels
from recsys_operator.builders.trainer import build_job, cron_schedule
from recsys_operator.handlers.shared import Logger
from recsys_operator.kube import Kube
from recsys_operator.scheduling import Decision, decide, job_info
from recsys_operator.status import condition, last_finished, outcome


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def schedule_jobs(
    inst: Instance, kube: Kube, status: Mapping[str, Any], now: datetime, logger: Logger
) -> tuple[Decision | None, dict[str, Any]]:
    """Run the pure scheduler for interval-mode instances; returns (decision, status patch)."""
    training = inst.spec.training
    if cron_schedule(training) is not None:
        return None, {}  # a native CronJob owns scheduling
    labels = {**selector_labels(inst, c.TRAIN), c.LABEL_TRIGGER: "operator"}
    jobs = await kube.list("batch/v1", "Job", inst.namespace, labels)
    last = _parse(status.get("lastScheduleTime"))
    decision = decide(now, training, last, [job_info(j) for j in jobs])
    for name in decision.delete:
        why = "history limit" if name in decision.pruned else "replaced"
        if await kube.delete("batch/v1", "Job", inst.namespace, name):
            logger.info("deleted training job %s (%s)", name, why)
    patch: dict[str, Any] = {}
    if decision.launch_at is not None:
        job = build_job(inst, decision.launch_at)
        if await kube.create(job, tolerate_conflict=True) is not None:
            logger.info("launched training job %s", job["metadata"]["name"])
        patch["lastScheduleTime"] = decision.launch_at.isoformat()
    return decision, patch


async def training_status(
    inst: Instance,
    kube: Kube,
    status: Mapping[str, Any],
    generation: int,
    now: datetime,
) -> dict[str, Any]:
    """Status update from the most recently finished training Job and its pod.

    ``conditions`` holds updates by type, applied to the live list by ``update_status``.
    """
    previous: list[Mapping[str, Any]] = list(status.get("conditions") or [])
    jobs = await kube.list("batch/v1", "Job", inst.namespace, selector_labels(inst, c.TRAIN))
    found = last_finished(jobs)
    updates: list[dict[str, Any]] = []
    patch: dict[str, Any] = {}
    if found is None:
        existing = next((cond for cond in previous if cond.get("type") == c.COND_TRAINING), None)
        if existing is not None and existing.get("observedGeneration") != generation:
            # No newer finished run (or its Job was pruned): the last verdict stands, and it
            # has now been re-checked against this generation of the spec.
            updates.append({**existing, "observedGeneration": generation})
        elif existing is None:
            updates.append(
                condition(
                    c.COND_TRAINING,
                    None,
                    "NoRunYet",
                    "no training run finished yet",
                    generation,
                    now,
                    previous,
                )
            )
    else:
        info, _job = found
        pods = await kube.list("v1", "Pod", inst.namespace, {c.LABEL_JOB_NAME_LEGACY: info.name})
        result = outcome(info, pods)
        patch["lastTrainingJob"] = result.job
        updates.append(
            condition(
                c.COND_TRAINING,
                result.succeeded,
                "JobSucceeded" if result.succeeded else "JobFailed",
                result.message,
                generation,
                now,
                previous,
            )
        )
        if result.succeeded and result.summary is not None:
            summary = result.summary
            if summary.version is not None:
                patch["modelVersion"] = summary.version
            patch["lastTrainingTime"] = summary.trained_at or (
                result.finished.isoformat() if result.finished else now.isoformat()
            )
            if summary.ndcg is not None:
                patch["holdoutNDCG"] = summary.ndcg
            if summary.precision is not None:
                patch["holdoutPrecision"] = summary.precision
    model_version = patch.get("modelVersion") or status.get("modelVersion")
    updates.append(
        condition(
            c.COND_MODEL,
            bool(model_version),
            "ModelPublished" if model_version else "NoModelYet",
            f"serving model {model_version}" if model_version else "no model trained yet",
            generation,
            now,
            previous,
        )
    )
    patch["conditions"] = updates
    return patch
