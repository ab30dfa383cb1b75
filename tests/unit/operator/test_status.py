"""Status computations: termination message parsing, outcomes, conditions."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from recsys_operator.scheduling import JobInfo, JobState
from recsys_operator.status import (
    condition,
    merge_conditions,
    outcome,
    parse_summary,
    termination_message,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def pod(message: str) -> dict[str, object]:
    return {
        "status": {
            "containerStatuses": [
                {"name": "train", "state": {"terminated": {"exitCode": 0, "message": message}}}
            ]
        }
    }


def test_parse_summary_reads_metrics() -> None:
    s = parse_summary(
        json.dumps(
            {
                "version": 7,
                "model": "ease",
                "trained_at": 0,
                "metrics": {"ndcg@10": 0.5, "precision@10": 0.25},
            }
        )
    )
    assert s is not None
    assert (s.version, s.model, s.ndcg, s.precision) == ("7", "ease", 0.5, 0.25)
    assert s.trained_at is not None and s.trained_at.startswith("1970-01-01")


def test_parse_summary_tolerates_garbage() -> None:
    assert parse_summary(None) is None
    assert parse_summary("Traceback (most recent call last)") is None
    assert parse_summary("[1, 2]") is None
    s = parse_summary('{"version": "v1", "metrics": {"ndcg@10": "n/a"}}')
    assert s is not None and s.ndcg is None


def test_outcome_uses_the_pod_termination_message() -> None:
    info = JobInfo("j", NOW, JobState.SUCCEEDED, NOW)
    msg = json.dumps({"version": "v3", "metrics": {"ndcg@10": 0.1}})
    assert termination_message(pod(msg)) == msg
    result = outcome(info, [pod(msg)])
    assert result.succeeded and result.summary is not None and result.summary.version == "v3"
    assert "model v3" in result.message
    failed = outcome(JobInfo("k", NOW, JobState.FAILED, NOW), [])
    assert not failed.succeeded and failed.summary is None


def test_condition_keeps_transition_time_while_status_is_unchanged() -> None:
    first = condition("Ready", False, "Progressing", "m", 1, NOW)
    later = datetime(2026, 1, 2, tzinfo=UTC)
    same = condition("Ready", False, "Progressing", "m2", 2, later, [first])
    assert same["lastTransitionTime"] == first["lastTransitionTime"]
    assert same["observedGeneration"] == 2
    flipped = condition("Ready", True, "Available", "m", 2, later, [first])
    assert flipped["lastTransitionTime"] == later.isoformat()


def test_merge_conditions_replaces_by_type_in_stable_order() -> None:
    a = condition("ModelAvailable", True, "x", "", 1, NOW)
    b = condition("Ready", True, "x", "", 1, NOW)
    c = condition("Ready", False, "y", "", 2, NOW)
    merged = merge_conditions([a, b], [c])
    assert [m["type"] for m in merged] == ["Ready", "ModelAvailable"]
    assert merged[0]["status"] == "False"
