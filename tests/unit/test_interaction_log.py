"""The durable log: round trip, torn writes cut at open, truncate."""

from __future__ import annotations

from pathlib import Path

from services.trainer.interaction_log import InteractionLog
from tests.factories import event


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
