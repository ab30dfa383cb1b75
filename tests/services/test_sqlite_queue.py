"""The embedded broker's own guarantees (embedded only: RabbitMQ provides these itself)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from services.common.broker import BrokerUnavailableError, QueuedMessage
from services.common.sqlite_queue import SqlitePublisher, SqliteQueue, path_from_url


def queue_at(tmp_path: Path, name: str = "q") -> SqliteQueue:
    return SqliteQueue(tmp_path / "queue.db", name)


def message(n: int) -> QueuedMessage:
    return QueuedMessage(f'{{"n": {n}}}'.encode(), f"m{n}", {})


def test_url_forms() -> None:
    assert path_from_url("sqlite:////abs/dir/queue.db") == Path("/abs/dir/queue.db")
    assert path_from_url("sqlite:///rel/queue.db") == Path("rel/queue.db")
    with pytest.raises(ValueError, match="not a sqlite queue URL"):
        path_from_url("amqp://guest@localhost/")


def test_embedded_leased_messages_are_invisible_until_acked(tmp_path: Path) -> None:
    queue = queue_at(tmp_path)
    queue.publish_many([message(n) for n in range(5)])
    first = queue.lease("a", 3, 60)
    assert [entry.message.message_id for entry in first] == ["m0", "m1", "m2"]
    assert queue.depth() == 2
    second = queue.lease("b", 10, 60)
    assert [entry.message.message_id for entry in second] == ["m3", "m4"]
    assert queue.lease("c", 10, 60) == []
    queue.ack("a", [entry.row_id for entry in first])
    queue.ack("a", [entry.row_id for entry in second])  # not a's lease: stays
    assert queue.lease("c", 10, 60) == []
    queue.release("b")
    assert [e.message.message_id for e in queue.lease("c", 10, 60)] == ["m3", "m4"]


def test_embedded_expired_lease_is_delivered_again(tmp_path: Path) -> None:
    queue = queue_at(tmp_path)
    queue.publish_many([message(1)])
    assert len(queue.lease("a", 10, 0.0)) == 1
    [again] = queue.lease("b", 10, 60)
    assert again.message.message_id == "m1"


def test_embedded_lease_of_a_dead_consumer_is_released(tmp_path: Path) -> None:
    """A consumer process that dies before its ack gives its messages back."""
    queue = queue_at(tmp_path)
    queue.publish_many([message(n) for n in range(3)])
    script = (
        "import sys; from pathlib import Path;"
        "from services.common.sqlite_queue import SqliteQueue;"
        "q = SqliteQueue(Path(sys.argv[1]), 'q'); assert len(q.lease('dying', 2, 600)) == 2"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "queue.db")], check=True)
    assert [e.message.message_id for e in queue.lease("next", 10, 60)] == ["m2"]
    assert queue.release() == 2  # the dead pid's leases
    assert [e.message.message_id for e in queue.lease("next", 10, 60)] == ["m0", "m1"]


def test_embedded_purge_keeps_leased_messages(tmp_path: Path) -> None:
    queue = queue_at(tmp_path)
    queue.publish_many([message(n) for n in range(4)])
    queue.lease("a", 1, 60)
    assert queue.purge() == 3
    assert queue.depth() == 0
    queue.release("a")
    assert queue.depth() == 1


def test_embedded_queues_in_one_file_are_separate(tmp_path: Path) -> None:
    queue_at(tmp_path, "one").publish_many([message(1)])
    assert queue_at(tmp_path, "two").depth() == 0
    assert queue_at(tmp_path, "one").depth() == 1


async def test_embedded_concurrent_publishes_are_all_committed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    publisher = SqlitePublisher(url, "q", timeout=5)
    await publisher.connect()
    assert publisher.connected
    ids = await asyncio.gather(*(publisher.publish(b"{}") for _ in range(300)))
    await publisher.close()
    assert len(set(ids)) == 300
    leased = queue_at(tmp_path).lease("x", 1000, 60)
    assert [e.message.message_id for e in leased] == ids  # publish order kept


async def test_embedded_unusable_file_is_broker_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    publisher = SqlitePublisher(f"sqlite:///{tmp_path / 'file' / 'queue.db'}", "q", timeout=1)
    await publisher.connect()
    assert not publisher.connected
    with pytest.raises(BrokerUnavailableError):
        await publisher.publish(b"{}")
    await publisher.close()
