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
    status_patch,
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


def test_status_patch_keeps_conditions_another_writer_added() -> None:
    # The race: the reconcile handler computed Ready from an old view (no conditions yet);
    # meanwhile the scheduler recorded a training outcome. Merge patch replaces lists
    # wholesale, so the list sent must be the live one with Ready applied, not [Ready].
    training = condition("TrainingSucceeded", True, "JobSucceeded", "job j succeeded", 1, NOW)
    model = condition("ModelAvailable", True, "ModelPublished", "serving model v42", 1, NOW)
    live = {"modelVersion": "v42", "conditions": [training, model]}
    ready = condition("Ready", True, "Available", "all components available", 1, NOW, [])
    patch = status_patch(live, {"phase": "Ready", "conditions": [ready]})
    assert patch["phase"] == "Ready"
    assert [cond["type"] for cond in patch["conditions"]] == [
        "Ready",
        "TrainingSucceeded",
        "ModelAvailable",
    ]
    assert patch["conditions"][1] == training and patch["conditions"][2] == model
    assert "modelVersion" not in patch  # fields the writer does not own are left alone


def test_status_patch_keeps_the_live_transition_time_of_an_unchanged_condition() -> None:
    live = {"conditions": [condition("Ready", True, "Available", "ok", 1, NOW)]}
    later = datetime(2026, 1, 2, tzinfo=UTC)
    # Computed from a view without the condition, so it carries a fresh transition time.
    stale = condition("Ready", True, "Available", "ok", 2, later, [])
    [merged] = status_patch(live, {"conditions": [stale]})["conditions"]
    assert merged["lastTransitionTime"] == NOW.isoformat()
    assert merged["observedGeneration"] == 2
    flipped = condition("Ready", False, "Progressing", "m", 2, later, [])
    [merged] = status_patch(live, {"conditions": [flipped]})["conditions"]
    assert merged["lastTransitionTime"] == later.isoformat()


def test_status_patch_without_conditions_leaves_the_list_alone() -> None:
    live = {"conditions": [condition("Ready", True, "Available", "ok", 1, NOW)]}
    assert status_patch(live, {"lastScheduleTime": "t"}) == {"lastScheduleTime": "t"}
