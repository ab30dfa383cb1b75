"""Pure status computations: training outcome from Jobs/Pods, conditions with transitions."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from recsys_operator import constants as c
from recsys_operator.scheduling import JobInfo, JobState, job_info


@dataclass(frozen=True)
class TrainingSummary:
    """The JSON a train pod writes to its termination message."""

    version: str | None
    model: str | None
    trained_at: str | None
    ndcg: float | None
    precision: float | None


@dataclass(frozen=True)
class TrainingOutcome:
    """The last finished training run, as far as the API shows it."""

    job: str
    succeeded: bool
    finished: datetime | None
    summary: TrainingSummary | None
    message: str


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def parse_summary(message: str | None) -> TrainingSummary | None:
    """Parse ``{"version","model","trained_at","metrics":{...}}``; None if absent or garbled."""
    if not message:
        return None
    try:
        data = json.loads(message)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    metrics = data.get("metrics") if isinstance(data.get("metrics"), dict) else {}
    assert isinstance(metrics, dict)
    version = data.get("version")
    trained_at = data.get("trained_at")
    return TrainingSummary(
        version=None if version is None else str(version),
        model=None if data.get("model") is None else str(data.get("model")),
        trained_at=_iso(trained_at),
        ndcg=_number(metrics.get("ndcg@10")),
        precision=_number(metrics.get("precision@10")),
    )


def _iso(value: Any) -> str | None:
    # trained_at may come as an ISO string or as epoch seconds.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value)).astimezone().isoformat()
    return str(value) if value else None


def termination_message(pod: Mapping[str, Any], container: str = c.TRAIN) -> str | None:
    """The terminated state's message of ``container`` in ``pod``."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") != container:
            continue
        for key in ("state", "lastState"):
            terminated = (status.get(key) or {}).get("terminated")
            if terminated and terminated.get("message"):
                return str(terminated["message"])
    return None


def last_finished(jobs: Sequence[Mapping[str, Any]]) -> tuple[JobInfo, Mapping[str, Any]] | None:
    """The most recently finished Job."""
    finished = [(job_info(j), j) for j in jobs]
    done = [(i, j) for i, j in finished if i.state is not JobState.ACTIVE]
    if not done:
        return None
    return max(done, key=lambda pair: (pair[0].finished or pair[0].created, pair[0].name))


def outcome(info: JobInfo, pods: Sequence[Mapping[str, Any]]) -> TrainingOutcome:
    """Combine a finished Job and its pods into an outcome."""
    summary: TrainingSummary | None = None
    for pod in pods:
        summary = parse_summary(termination_message(pod))
        if summary is not None:
            break
    succeeded = info.state is JobState.SUCCEEDED
    message = (
        f"job {info.name} succeeded"
        + (f", model {summary.version}" if summary and summary.version else "")
        if succeeded
        else f"job {info.name} failed"
    )
    return TrainingOutcome(info.name, succeeded, info.finished, summary, message)


def condition(
    type_: str,
    ok: bool | None,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
    previous: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """A condition; lastTransitionTime only moves when the status value changes."""
    status = "Unknown" if ok is None else ("True" if ok else "False")
    transition = now.isoformat()
    for old in previous:
        same = old.get("type") == type_ and old.get("status") == status
        if same and old.get("lastTransitionTime"):
            transition = str(old["lastTransitionTime"])
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": transition,
    }


def merge_conditions(
    previous: Sequence[Mapping[str, Any]], updates: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Replace conditions by type, keep the others, stable order.

    An update whose status equals the existing condition's keeps that condition's
    lastTransitionTime: an update computed from an older view of the object (where the
    condition was absent or different) must not move the transition time of the live one.
    """
    by_type = {str(cond.get("type")): dict(cond) for cond in previous}
    for cond in updates:
        new = dict(cond)
        old = by_type.get(str(cond["type"]))
        if old and old.get("status") == new.get("status") and old.get("lastTransitionTime"):
            new["lastTransitionTime"] = old["lastTransitionTime"]
        by_type[str(cond["type"])] = new
    order = [c.COND_READY, c.COND_TRAINING, c.COND_MODEL]
    return sorted(by_type.values(), key=lambda d: [*order, d["type"]].index(d["type"]))


def status_patch(current: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """The status merge patch that applies ``update`` on top of the live ``current`` status.

    ``update`` holds the fields one writer owns; its ``conditions`` are *updates by type*,
    not the whole list. Merge patch replaces lists wholesale, so the list sent must be the
    live one with these updates applied: otherwise two writers (the reconcile handler and
    the scheduler loop) drop each other's conditions. The result is only correct against
    the resourceVersion ``current`` was read at; callers guard the patch with it.
    """
    patch = {key: value for key, value in update.items() if key != "conditions"}
    if "conditions" in update:
        patch["conditions"] = merge_conditions(
            list(current.get("conditions") or []), update["conditions"]
        )
    return patch


def deployment_available(deployment: Mapping[str, Any] | None) -> bool:
    """At least one available replica (or zero wanted)."""
    if not deployment:
        return False
    status = deployment.get("status") or {}
    wanted = (deployment.get("spec") or {}).get("replicas", 1)
    return wanted == 0 or int(status.get("availableReplicas") or 0) >= 1
