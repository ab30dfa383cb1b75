"""Restart policy of `recsys up` (services/supervision.py), without real processes."""

from __future__ import annotations

from pathlib import Path

from services.supervision import Backoff, Supervised, Supervisor, describe_exit, last_warning


def test_backoff_doubles_up_to_the_cap_and_resets_after_a_long_run() -> None:
    backoff = Backoff(initial=0.5, maximum=4, reset_after=60)
    assert [backoff.next_delay(uptime=1) for _ in range(6)] == [0.5, 1, 2, 4, 4, 4]
    assert backoff.next_delay(uptime=60) == 0.5
    assert backoff.next_delay(uptime=2) == 1


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def check_at(supervisor: Supervisor, clock: Clock, now: float) -> None:
    clock.now = now
    supervisor.check()


class FakeProcess:
    def __init__(self) -> None:
        self.code: int | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.code = None


def test_a_dead_process_is_restarted_after_its_delay_and_reported(tmp_path: Path) -> None:
    fake = FakeProcess()
    notes: list[str | None] = []
    process = Supervised(
        "api",
        start=fake.start,
        poll=lambda: fake.code,
        backoff=Backoff(initial=1, maximum=8, reset_after=10),
        data_dir=tmp_path,
        started_at=0,
    )
    clock = Clock()
    supervisor = Supervisor([process], notes.append, clock)
    check_at(supervisor, clock, 5)
    assert notes == [None], "a note left by an earlier launcher is cleared"
    check_at(supervisor, clock, 5.5)
    assert notes == [None] and fake.starts == 0, "a note written per round"

    fake.code = -9
    check_at(supervisor, clock, 6)
    assert fake.starts == 0, "restarted before its delay"
    assert notes[-1] == "api down (last exit: killed by SIGKILL)"
    check_at(supervisor, clock, 6.9)
    assert fake.starts == 0
    check_at(supervisor, clock, 7)
    assert fake.starts == 1 and process.restarts == 1
    assert notes[-1] == "api restarted 1x (last exit: killed by SIGKILL)"

    fake.code = 3  # dies again at once: twice the delay
    check_at(supervisor, clock, 7.5)
    check_at(supervisor, clock, 9.4)
    assert fake.starts == 1
    check_at(supervisor, clock, 9.5)
    assert fake.starts == 2

    # Up long enough: the note goes.
    started = process.started_at
    assert started == 9.5
    check_at(supervisor, clock, started + 9)
    assert notes[-1] is not None
    check_at(supervisor, clock, started + 10)
    assert notes[-1] is None


def test_a_failed_report_is_tried_again(tmp_path: Path) -> None:
    fake = FakeProcess()
    written: list[str | None] = []
    failures: list[Exception] = []

    def report(note: str | None) -> None:
        if failures:
            raise failures.pop()
        written.append(note)

    process = Supervised(
        "trainer",
        start=fake.start,
        poll=lambda: fake.code,
        backoff=Backoff(1, 8, 10),
        data_dir=tmp_path,
        started_at=0,
    )
    clock = Clock()
    supervisor = Supervisor([process], report, clock)
    check_at(supervisor, clock, 0.5)
    written.clear()
    failures.append(ConnectionError("redis is down"))
    fake.code = 1
    check_at(supervisor, clock, 1)
    assert written == []
    check_at(supervisor, clock, 1.5)
    assert written == ["trainer down (last exit: exit code 1)"]


def test_the_cause_names_a_full_disk_and_only_the_last_runs_warning(tmp_path: Path) -> None:
    log = tmp_path / "redis.log"
    log.write_text("1:M 07 Dec # Configuration loaded\n")
    offset = log.stat().st_size
    assert last_warning(log, offset) is None
    with log.open("a") as file:
        file.write("1:M 07 Dec * Ready\n1:M 07 Dec # Error writing to the AOF file\n")
    assert last_warning(log, offset) == "Error writing to the AOF file"
    assert describe_exit(1, tmp_path, log, offset).startswith("exit code 1; its log: ")
    assert "filesystem is full" not in describe_exit(1, tmp_path)
