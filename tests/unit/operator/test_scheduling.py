"""Scheduling decisions as pure functions of (now, last schedule, jobs, policy)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from recsys_operator.scheduling import JobInfo, JobState, decide, job_info, prune_history
from recsys_operator.spec import Training

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def training(**kw: object) -> Training:
    return Training.model_validate({"intervalSeconds": 30, **kw})


def job(name: str, age: float, state: JobState, finished_age: float | None = None) -> JobInfo:
    finished = None if finished_age is None else T0 - timedelta(seconds=finished_age)
    return JobInfo(name, T0 - timedelta(seconds=age), state, finished)


def test_first_run_is_due_immediately() -> None:
    d = decide(T0, training(), None, [])
    assert d.launch_at == T0 and d.next_due == T0 + timedelta(seconds=30)


def test_not_due_before_the_interval() -> None:
    d = decide(T0, training(), T0 - timedelta(seconds=10), [])
    assert d.launch_at is None and d.next_due == T0 + timedelta(seconds=20)


def test_newest_job_counts_even_if_status_lags() -> None:
    jobs = [job("a", 5, JobState.SUCCEEDED, 1)]
    assert decide(T0, training(), T0 - timedelta(seconds=300), jobs).launch_at is None


def test_suspend_never_launches_but_still_prunes() -> None:
    jobs = [job(f"j{i}", 100 + i, JobState.SUCCEEDED, 90 + i) for i in range(5)]
    d = decide(T0, training(suspend=True), None, jobs)
    assert d.launch_at is None and d.reason == "suspended"
    assert set(d.delete) == {"j3", "j4"}  # the 3 newest succeeded are kept


def test_forbid_skips_while_a_run_is_active() -> None:
    d = decide(T0, training(), T0 - timedelta(seconds=60), [job("a", 60, JobState.ACTIVE)])
    assert d.launch_at is None and d.reason == "previous run active"


def test_allow_runs_concurrently() -> None:
    jobs = [job("a", 60, JobState.ACTIVE)]
    d = decide(T0, training(concurrencyPolicy="Allow"), None, jobs)
    assert d.launch_at == T0 and d.delete == ()


def test_replace_deletes_the_active_run_and_launches() -> None:
    jobs = [job("a", 60, JobState.ACTIVE)]
    d = decide(T0, training(concurrencyPolicy="Replace"), None, jobs)
    assert d.launch_at == T0 and d.delete == ("a",)


def test_history_limits_keep_the_newest_per_outcome() -> None:
    jobs = [
        job("s1", 50, JobState.SUCCEEDED, 40),
        job("s2", 40, JobState.SUCCEEDED, 30),
        job("f1", 30, JobState.FAILED, 20),
        job("f2", 20, JobState.FAILED, 10),
        job("run", 5, JobState.ACTIVE),
    ]
    assert prune_history(jobs, 1, 1) == ["s1", "f1"]
    assert prune_history(jobs, 0, 0) == ["s1", "s2", "f1", "f2"]
    assert prune_history(jobs, 10, 10) == []


def test_job_info_reads_conditions() -> None:
    raw = {
        "metadata": {"name": "j", "creationTimestamp": "2026-01-01T12:00:00Z"},
        "status": {
            "conditions": [
                {"type": "Failed", "status": "True", "lastTransitionTime": "2026-01-01T12:01:00Z"}
            ]
        },
    }
    info = job_info(raw)
    assert info.state is JobState.FAILED
    assert info.finished == T0 + timedelta(minutes=1)
    active = job_info({"metadata": {"name": "k", "creationTimestamp": "2026-01-01T12:00:00Z"}})
    assert active.state is JobState.ACTIVE and active.finished is None


def test_jobs_count_by_their_scheduled_at_annotation_not_the_api_server_clock() -> None:
    # The API server's clock runs 20 s ahead of the operator's: the Job launched at T0 - 30 s
    # was stamped T0 - 10 s. By the operator's clock it is due again now (interval 30 s).
    raw = {
        "metadata": {
            "name": "j",
            "creationTimestamp": "2026-01-01T11:59:50Z",
            "annotations": {"recsys.io/scheduled-at": "2026-01-01T11:59:30+00:00"},
        },
        "status": {"succeeded": 1, "completionTime": "2026-01-01T11:59:55Z"},
    }
    info = job_info(raw)
    assert info.scheduled == T0 - timedelta(seconds=30)
    d = decide(T0, training(), T0 - timedelta(seconds=30), [info])
    assert d.launch_at == T0, d.reason
    # Without the annotation (a Job from an older operator) the creation time still counts.
    del raw["metadata"]["annotations"]  # type: ignore[attr-defined]
    assert decide(T0, training(), None, [job_info(raw)]).launch_at is None
