"""The durable log: round trip, torn writes cut at open and on a failed append, truncate."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from services.trainer.interaction_log import InteractionLog
from tests.factories import event
from tests.tmpfs import PAGE, fill, tiny_tmpfs


def test_round_trip_and_ids(tmp_path: Path) -> None:
    log = InteractionLog(tmp_path / "log")
    events = [event("u", ["a"], ["like"]), event("v", ["b", "c"], ["dislike", "like"])]
    log.append(events)
    assert list(log.read()) == events
    assert log.event_ids() == {e.event_id for e in events}


def test_torn_last_line_is_cut_on_open(tmp_path: Path) -> None:
    path = tmp_path / "log"
    log = InteractionLog(path)
    good = event("u", ["a"], ["like"])
    log.append([good])
    log.close()
    with open(path, "ab") as file:
        file.write(b'{"event_id": "half", "user_')
    reopened = InteractionLog(path)
    assert list(reopened.read()) == [good]
    reopened.append([event("w", ["z"], ["like"])])
    assert len(list(reopened.read())) == 2
    assert path.read_bytes().count(b"\n") == 2


def test_file_with_only_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(b'{"event_id": "x"')
    assert list(InteractionLog(path).read()) == []
    assert path.read_bytes() == b""


def test_unreadable_complete_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "log"
    log = InteractionLog(path)
    log.append([event("u", ["a"], ["like"])])
    with open(path, "ab") as file:
        file.write(b"garbage\n")
    log.append([event("v", ["a"], ["like"])])
    assert [e.user_id for e in log.read()] == ["u", "v"]


def test_truncate(tmp_path: Path) -> None:
    log = InteractionLog(tmp_path / "log")
    log.append([event("u", ["a"], ["like"])])
    log.truncate()
    assert list(log.read()) == []
    log.append([event("v", ["a"], ["like"])])
    assert [e.user_id for e in log.read()] == ["v"]


def test_failed_append_on_a_full_disk_leaves_no_torn_line(tmp_path: Path) -> None:
    """A write that ENOSPC cuts mid-way is truncated back: the next append starts clean."""
    with tiny_tmpfs(tmp_path / "disk", 16 * PAGE) as disk:
        log = InteractionLog(disk / "log")
        try:
            good = event("u", ["a"], ["like"])
            log.append([good])
            before = log.path.read_bytes()
            fill(disk / "filler", leave_free=PAGE)
            # Larger than the room left (the rest of the log's page and one free page).
            big = event("big", [f"item-{n:04d}" for n in range(1000)], ["like"] * 1000)
            with pytest.raises(OSError) as failed:
                log.append([big, event("v", ["b"], ["like"])])
            assert failed.value.errno == errno.ENOSPC
            assert log.path.read_bytes() == before, "torn part of the failed write left behind"
            (disk / "filler").unlink()
            later = event("w", ["c"], ["dislike"])
            log.append([later])
            assert list(log.read()) == [good, later]
            assert log.path.read_bytes().count(b"\n") == 2
        finally:
            log.close()
