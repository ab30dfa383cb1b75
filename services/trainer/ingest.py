"""Queue → durable log → Redis ratings, acknowledging only what is safely stored."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import ValidationError
from redis.exceptions import RedisError

from services.common.broker import (
    CLEANUP_TOKEN_HEADER,
    CONTROL_CLEANUP,
    CONTROL_HEADER,
    QueuedMessage,
)
from services.common.events import InteractEvent, StoredEvent
from services.common.metrics import (
    EVENTS_DUPLICATE,
    EVENTS_REJECTED,
    INGEST_STORAGE_BLOCKED,
    INGEST_STORAGE_ERRORS,
)
from services.common.settings import Settings
from services.common.status import INGEST_NOTE
from services.trainer.consumers import BatchConsumer, Pause, open_consumer
from services.trainer.feedback_state import FeedbackState
from services.trainer.interaction_log import InteractionLog

log = logging.getLogger(__name__)


class IngestInterruptedError(Exception):
    """Stopping while a batch is unstored: it stays unacknowledged and is redelivered."""


@dataclass
class IngestStats:
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    cleanups: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def decode(message: QueuedMessage) -> StoredEvent | str | None:
    """A StoredEvent, the name of a control command, or None for a poison message."""
    body = message.body
    control = message.headers.get(CONTROL_HEADER)
    if control is not None:
        return str(control)
    try:
        event = InteractEvent.model_validate_json(body)
    except ValidationError:
        return None
    # Messages published without an id (by older producers) get a content hash,
    # so a redelivery of the same bytes still deduplicates.
    event_id = message.message_id or hashlib.sha256(body).hexdigest()
    return StoredEvent(
        event_id=event_id,
        user_id=event.user_id,
        item_ids=event.item_ids,
        actions=event.actions,
        timestamp=event.timestamp if event.timestamp is not None else time.time(),
    )


class Ingester:
    """Consumes the interaction queue; safe to kill at any point (redelivery dedups)."""

    def __init__(
        self,
        settings: Settings,
        interaction_log: InteractionLog,
        state: FeedbackState,
        *,
        on_stored: Callable[[list[StoredEvent]], None] | None = None,
        on_cleanup: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.log = interaction_log
        self.state = state
        self.on_stored = on_stored
        self.on_cleanup = on_cleanup
        self.seen = interaction_log.event_ids()
        self.stats = IngestStats()
        # True until a write succeeds: clears a note an earlier process left while blocked.
        self._storage_note = True
        INGEST_STORAGE_BLOCKED.set(0)
        self.stop = threading.Event()
        self.ready = threading.Event()
        log.info("ingest: %d events already in the log", len(self.seen))

    def run(self, consumer: BatchConsumer | None = None) -> None:
        """Consume until ``stop`` is set, reconnecting with backoff on broker failures."""
        consumer = consumer or open_consumer(self.settings)
        delay = 0.5
        while not self.stop.is_set():
            try:
                consumer.consume(self.store_batch, self.stop, self.ready)
                delay = 0.5
            except IngestInterruptedError:
                return
            except consumer.errors as error:
                self.ready.clear()
                log.warning("ingest: broker connection lost (%r); retrying in %.1fs", error, delay)
                self.stop.wait(delay)
                delay = min(delay * 2, 10.0)

    def store_batch(self, messages: list[QueuedMessage], pause: Pause) -> None:
        """Log (fsync) and apply a batch in delivery order; the consumer acks it after."""
        batch: list[StoredEvent] = []
        for message in messages:
            decoded = decode(message)
            if isinstance(decoded, StoredEvent):
                batch.append(decoded)
            elif decoded == CONTROL_CLEANUP:
                self._write(pause, batch)
                batch = []
                self._cleanup(pause, message.headers.get(CLEANUP_TOKEN_HEADER))
            elif decoded is None:
                EVENTS_REJECTED.labels("poison").inc()
                with self.stats.lock:
                    self.stats.rejected += 1
                log.warning("ingest: dropping unreadable message %r", message.body[:200])
            else:
                log.warning("ingest: unknown control command %r", decoded)
        self._write(pause, batch)

    def _write(self, pause: Pause, batch: list[StoredEvent]) -> None:
        if not batch:
            return
        fresh: list[StoredEvent] = []
        fresh_ids: set[str] = set()
        for event in batch:
            if event.event_id in self.seen or event.event_id in fresh_ids:
                EVENTS_DUPLICATE.inc()
                with self.stats.lock:
                    self.stats.duplicates += 1
            else:
                fresh_ids.add(event.event_id)
                fresh.append(event)
        self._retry_storage(pause, lambda: self.log.append(fresh))
        # Only now: an id marked seen before its fsync made a redelivery look like a duplicate.
        self.seen.update(fresh_ids)
        # Ratings are re-applied even for duplicates: the last attempt may have died
        # between the log write and Redis. The Lua script makes that harmless.
        self._retry_redis(pause, lambda: self.state.apply(batch))
        with self.stats.lock:
            self.stats.stored += len(fresh)
        if self.on_stored is not None and fresh:
            self.on_stored(fresh)

    def _cleanup(self, pause: Pause, token: object) -> None:
        log.info("ingest: cleanup requested, truncating the interaction log")
        self._retry_storage(pause, self.log.truncate)
        self.seen.clear()
        self._retry_redis(pause, self.state.clear_ratings)
        if token is not None:
            self._retry_redis(pause, lambda: self.state.finish_cleanup(str(token)))
        with self.stats.lock:
            self.stats.cleanups += 1
        if self.on_cleanup is not None:
            self.on_cleanup()

    def _retry_storage(self, pause: Pause, action: Callable[[], None]) -> None:
        """Run a write to the interaction log until it succeeds, holding the batch meanwhile.

        An OSError here is the disk's, not the broker's: it must not reach the consumer,
        which would reconnect and take the redelivery for something already stored.
        """
        delay = 0.2
        failed = False
        while True:
            try:
                action()
            except OSError as error:
                failed = True
                INGEST_STORAGE_ERRORS.inc()
                INGEST_STORAGE_BLOCKED.set(1)
                self._set_storage_note(
                    f"cannot write the interaction log {self.log.path}: {error}; "
                    "ingestion is paused, events stay unacknowledged in the queue"
                )
                if self.stop.is_set():
                    raise IngestInterruptedError("stopping with unstored batch") from error
                log.warning(
                    "ingest: cannot write the interaction log %s (%r); the batch stays "
                    "unacknowledged, retrying in %.1fs",
                    self.log.path,
                    error,
                    delay,
                )
                # pause() keeps the batch ours meanwhile (heartbeats, or a longer lease).
                pause(delay)
                delay = min(delay * 2, 5.0)
            else:
                if failed:
                    log.info("ingest: the interaction log is writable again")
                INGEST_STORAGE_BLOCKED.set(0)
                if self._storage_note:
                    self._set_storage_note(None)
                return

    def _set_storage_note(self, note: str | None) -> None:
        """Best effort: Redis may be down as well, and the note must not stop the retries."""
        try:
            self.state.set_status(INGEST_NOTE, note)
        except RedisError as error:
            log.warning("ingest: cannot update the status note (%r)", error)
            return
        self._storage_note = note is not None

    def _retry_redis(self, pause: Pause, action: Callable[[], None]) -> None:
        delay = 0.2
        while True:
            try:
                action()
                return
            except RedisError as error:
                if self.stop.is_set():
                    raise IngestInterruptedError("stopping with unstored batch") from error
                log.warning("ingest: redis unavailable (%r); retrying in %.1fs", error, delay)
                # pause() keeps the batch ours meanwhile (heartbeats, or a longer lease).
                pause(delay)
                delay = min(delay * 2, 5.0)
