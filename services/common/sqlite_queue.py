"""The embedded broker: a durable queue in one SQLite file, shared by local processes.

Used when ``AMQP_URL`` is not set. It keeps the guarantees the collector and the ingester
rely on with RabbitMQ: a publish returns only once the message is committed (WAL,
``synchronous=FULL``: fsynced), a consumer leases a batch (invisible to others until the
lease ends) and deletes it on ack; leases of a consumer that died are handed out again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import urlparse

from services.common.broker import BrokerUnavailableError, QueuedMessage

log = logging.getLogger(__name__)

SCHEME = "sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  queue TEXT NOT NULL,
  message_id TEXT,
  headers TEXT NOT NULL,
  body BLOB NOT NULL,
  published_at REAL NOT NULL,
  lease_owner TEXT,
  lease_pid INTEGER,
  lease_until REAL
);
CREATE INDEX IF NOT EXISTS messages_by_queue ON messages (queue, id);
"""
# A message is ready (deliverable) when nobody holds a live lease on it.
_READY = "(lease_until IS NULL OR lease_until < ?)"


def path_from_url(url: str) -> Path:
    """The file of a queue URL, as SQLAlchemy spells them: ``sqlite:////abs/queue.db`` is
    absolute, ``sqlite:///queue.db`` relative to the working directory."""
    parsed = urlparse(url)
    if parsed.scheme != SCHEME or len(parsed.path) < 2:
        raise ValueError(f"not a sqlite queue URL: {url!r}")
    return Path(parsed.path[1:])


@dataclass(frozen=True)
class Leased:
    """A message handed to one consumer, with the row id its ack refers to."""

    row_id: int
    message: QueuedMessage


class SqliteQueue:
    """One named queue in a SQLite file; every method is one short transaction.

    A connection belongs to the thread that opened it, so one object may be used from
    several threads (each gets its own connection).
    """

    def __init__(self, path: Path, queue: str, *, timeout: float = 5.0) -> None:
        self.path = path
        self.queue = queue
        self.timeout = timeout
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode; transactions are explicit (BEGIN IMMEDIATE takes the write
            # lock up front, so concurrent writers wait on busy_timeout instead of failing).
            db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a commit is on disk: "confirmed"
            db.executescript(_SCHEMA)
            self._local.db = db
        return db

    def close(self) -> None:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def _write(self, action: Callable[[sqlite3.Connection], int]) -> int:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            result = action(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    def publish_many(self, messages: Sequence[QueuedMessage]) -> None:
        """Commit all messages in one transaction (one fsync for the group)."""
        now = time.time()
        rows = [
            (self.queue, m.message_id, json.dumps(dict(m.headers)), m.body, now) for m in messages
        ]
        self._write(
            lambda db: (
                db.executemany(
                    "INSERT INTO messages (queue, message_id, headers, body, published_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    rows,
                ).rowcount
            )
        )

    def depth(self) -> int:
        """Messages ready for delivery (not leased), as RabbitMQ's message_count."""
        row = (
            self._db()
            .execute(
                f"SELECT count(*) FROM messages WHERE queue = ? AND {_READY}",
                (self.queue, time.time()),
            )
            .fetchone()
        )
        return int(row[0])

    def purge(self) -> int:
        """Drop ready messages; leased ones stay with their consumer (as in RabbitMQ)."""
        return self._write(
            lambda db: (
                db.execute(
                    f"DELETE FROM messages WHERE queue = ? AND {_READY}",
                    (self.queue, time.time()),
                ).rowcount
            )
        )

    def lease(self, owner: str, limit: int, seconds: float) -> list[Leased]:
        """Take up to ``limit`` ready messages, oldest first, for ``seconds``."""
        now = time.time()

        def take(db: sqlite3.Connection) -> list[tuple[int, str | None, str, bytes]]:
            return db.execute(
                "UPDATE messages SET lease_owner = ?, lease_pid = ?, lease_until = ?"
                f" WHERE id IN (SELECT id FROM messages WHERE queue = ? AND {_READY}"
                "   ORDER BY id LIMIT ?)"
                " RETURNING id, message_id, headers, body",
                (owner, os.getpid(), now + seconds, self.queue, now, limit),
            ).fetchall()

        rows: list[tuple[int, str | None, str, bytes]] = []

        def run(db: sqlite3.Connection) -> int:
            rows.extend(take(db))
            return len(rows)

        self._write(run)
        # RETURNING gives no order guarantee; delivery order is publish order.
        rows.sort(key=lambda row: row[0])
        return [
            Leased(row_id, QueuedMessage(bytes(body), message_id, json.loads(headers)))
            for row_id, message_id, headers, body in rows
        ]

    def extend(self, owner: str, row_ids: Iterable[int], seconds: float) -> None:
        """Keep a lease alive while its batch is still being stored."""
        until = time.time() + seconds
        self._write(
            lambda db: (
                db.executemany(
                    "UPDATE messages SET lease_until = ? WHERE id = ? AND lease_owner = ?",
                    [(until, row_id, owner) for row_id in row_ids],
                ).rowcount
            )
        )

    def ack(self, owner: str, row_ids: Iterable[int]) -> None:
        """Delete acknowledged messages; a lease lost to another consumer is left alone."""
        self._write(
            lambda db: (
                db.executemany(
                    "DELETE FROM messages WHERE id = ? AND lease_owner = ?",
                    [(row_id, owner) for row_id in row_ids],
                ).rowcount
            )
        )

    def release(self, owner: str | None = None) -> int:
        """Hand back leases of ``owner`` and of consumers whose process is gone."""
        db = self._db()
        pids = [
            int(pid)
            for (pid,) in db.execute(
                "SELECT DISTINCT lease_pid FROM messages WHERE queue = ? AND lease_pid IS NOT NULL",
                (self.queue,),
            )
        ]
        dead = [pid for pid in pids if not _alive(pid)]

        def clear(db: sqlite3.Connection) -> int:
            count = 0
            for pid in dead:
                count += db.execute(
                    "UPDATE messages SET lease_owner = NULL, lease_pid = NULL, lease_until = NULL"
                    " WHERE queue = ? AND lease_pid = ?",
                    (self.queue, pid),
                ).rowcount
            if owner is not None:
                count += db.execute(
                    "UPDATE messages SET lease_owner = NULL, lease_pid = NULL, lease_until = NULL"
                    " WHERE queue = ? AND lease_owner = ?",
                    (self.queue, owner),
                ).rowcount
            return count

        return self._write(clear)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SqlitePublisher:
    """The collector's and the api's publisher over :class:`SqliteQueue`.

    Concurrent publishes are grouped into one transaction (group commit) by a single
    writer thread, so throughput is not one fsync per request and writers never contend
    for the SQLite lock inside one process.
    """

    def __init__(self, url: str, queue: str, *, timeout: float) -> None:
        self._queue = SqliteQueue(path_from_url(url), queue, timeout=timeout)
        self._timeout = timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-queue")
        self._pending: list[tuple[QueuedMessage, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._ok = False

    async def _call[T](self, function: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            result = await asyncio.wait_for(
                loop.run_in_executor(self._executor, function), self._timeout
            )
        except (sqlite3.Error, OSError, TimeoutError) as error:
            self._ok = False
            raise BrokerUnavailableError(f"sqlite queue {self._queue.path}: {error!r}") from error
        self._ok = True
        return result

    async def connect(self) -> None:
        """Open (and create) the queue file now; failures show in /healthcheck."""
        try:
            await self._call(self._queue.depth)
        except BrokerUnavailableError as error:
            # Same policy as the AMQP publisher: start anyway, report via /healthcheck.
            log.warning("embedded queue not usable: %s", error)

    @property
    def connected(self) -> bool:
        return self._ok

    async def publish(self, body: bytes, *, headers: dict[str, str] | None = None) -> str:
        """Return the message id once the message is committed to disk."""
        message_id = uuid.uuid4().hex
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((QueuedMessage(body, message_id, dict(headers or {})), done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await asyncio.shield(done)
        return message_id

    async def _flush(self) -> None:
        while self._pending:
            group, self._pending = self._pending, []
            messages = [message for message, _ in group]
            try:
                await self._call(partial(self._queue.publish_many, messages))
            except BrokerUnavailableError as error:
                for _, done in group:
                    if not done.done():
                        done.set_exception(error)
                continue
            for _, done in group:
                if not done.done():
                    done.set_result(None)

    async def purge(self) -> int:
        return await self._call(self._queue.purge)

    async def queue_depth(self) -> int:
        return await self._call(self._queue.depth)

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        self._executor.submit(self._queue.close).result()
        self._executor.shutdown(wait=True)
