"""Pure scheduling decisions for operator-launched training Jobs (sub-minute intervals).

Mirrors the CronJob controller's semantics (suspend, concurrencyPolicy, history limits) as a
function of (now, last schedule, existing Jobs, policy), so it is testable without a cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from recsys_operator.constants import ANNOTATION_SCHEDULED_AT
from recsys_operator.spec import Training


class JobState(StrEnum):
    """Coarse state of a Job."""

    ACTIVE = "active"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class JobInfo:
    """What scheduling needs to know about one Job."""

    name: str
    created: datetime
    state: JobState
    finished: datetime | None = None
    deleting: bool = False
    # When the operator scheduled it (its own clock); None for Jobs without the annotation.
    scheduled: datetime | None = None

    @property
    def scheduled_or_created(self) -> datetime:
        """The schedule time when known, else the API server's creation time."""
        return self.scheduled or self.created


@dataclass(frozen=True)
class Decision:
    """What to do on this tick."""

    launch_at: datetime | None = None  # the scheduled time of a new Job, if one is due
    delete: tuple[str, ...] = ()  # Jobs to delete (history limits, Replace policy)
    next_due: datetime | None = None  # when the next Job will be due
    reason: str = ""
    pruned: tuple[str, ...] = field(default=())  # the subset of `delete` due to history limits


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def job_info(job: Mapping[str, Any]) -> JobInfo:
    """Summarise a Job object (as returned by the API) for scheduling."""
    meta = job.get("metadata", {})
    status = job.get("status") or {}
    created = _parse_time(meta.get("creationTimestamp")) or datetime.fromtimestamp(0).astimezone()
    state = JobState.ACTIVE
    finished: datetime | None = None
    for cond in status.get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            state = JobState.SUCCEEDED
        elif cond.get("type") == "Failed":
            state = JobState.FAILED
        else:
            continue
        finished = _parse_time(cond.get("lastTransitionTime"))
    if state is JobState.ACTIVE and status.get("succeeded"):
        state = JobState.SUCCEEDED
    if state is JobState.SUCCEEDED and finished is None:
        finished = _parse_time(status.get("completionTime"))
    return JobInfo(
        name=str(meta.get("name", "")),
        created=created,
        state=state,
        finished=finished or (created if state is not JobState.ACTIVE else None),
        deleting=bool(meta.get("deletionTimestamp")),
        scheduled=_parse_time((meta.get("annotations") or {}).get(ANNOTATION_SCHEDULED_AT)),
    )


def prune_history(jobs: Iterable[JobInfo], successful_limit: int, failed_limit: int) -> list[str]:
    """Names of finished Jobs beyond the history limits, oldest first."""
    doomed: list[str] = []
    for state, limit in ((JobState.SUCCEEDED, successful_limit), (JobState.FAILED, failed_limit)):
        finished = sorted(
            (j for j in jobs if j.state is state and not j.deleting),
            key=lambda j: (j.finished or j.created, j.name),
            reverse=True,
        )
        doomed.extend(j.name for j in reversed(finished[limit:]))
    return doomed


def decide(
    now: datetime,
    training: Training,
    last_schedule: datetime | None,
    jobs: Sequence[JobInfo],
) -> Decision:
    """Decide whether to launch a Job now and which Jobs to delete."""
    assert training.interval_seconds is not None  # only called in interval mode
    interval = timedelta(seconds=training.interval_seconds)
    pruned = tuple(
        prune_history(
            jobs, training.successful_jobs_history_limit, training.failed_jobs_history_limit
        )
    )
    # The last schedule is the later of what status recorded and the newest Job seen: status
    # may lag behind (patch lost on a crash), and Jobs may have been pruned. A Job counts by
    # its scheduled-at annotation, i.e. by the same clock as `now`: its creationTimestamp is
    # the API server's clock, and any skew between the two would shift every due time.
    candidates = [
        t for t in (last_schedule, *(j.scheduled_or_created for j in jobs)) if t is not None
    ]
    last = max(candidates) if candidates else None
    due_at = now if last is None else last + interval

    if training.suspend:
        return Decision(delete=pruned, pruned=pruned, next_due=None, reason="suspended")
    if now < due_at:
        return Decision(delete=pruned, pruned=pruned, next_due=due_at, reason="not due")

    active = [j.name for j in jobs if j.state is JobState.ACTIVE and not j.deleting]
    policy = training.concurrency_policy
    if active and policy == "Forbid":
        # Like the CronJob controller: skip this run; it becomes due again on the next tick.
        return Decision(delete=pruned, pruned=pruned, next_due=now, reason="previous run active")
    replaced = tuple(active) if active and policy == "Replace" else ()
    return Decision(
        launch_at=now,
        delete=pruned + replaced,
        pruned=pruned,
        next_due=now + interval,
        reason="replacing active run" if replaced else "due",
    )
