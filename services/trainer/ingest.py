"""Queue → durable log → Redis ratings, acknowledging only what is safely stored."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel
from pydantic import ValidationError
from redis.exceptions import RedisError

from services.common.broker import CONTROL_CLEANUP, CONTROL_HEADER
from services.common.events import InteractEvent, StoredEvent
from services.common.metrics import (
    EVENTS_ACKED,
    EVENTS_CONSUMED,
    EVENTS_DUPLICATE,
    EVENTS_REJECTED,
    QUEUE_DEPTH,
)
from services.common.settings import Settings
from services.trainer.feedback_state import FeedbackState
from services.trainer.interaction_log import InteractionLog

log = logging.getLogger(__name__)

Delivery = tuple[pika.spec.Basic.Deliver, pika.BasicProperties, bytes]


@dataclass
class IngestStats:
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    cleanups: int = 0
    last_stored_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def decode(delivery: Delivery) -> StoredEvent | str | None:
    """A StoredEvent, the name of a control command, or None for a poison message."""
    _, properties, body = delivery
    headers = properties.headers or {}
    control = headers.get(CONTROL_HEADER)
    if control is not None:
        return str(control)
    try:
        event = InteractEvent.model_validate_json(body)
    except ValidationError:
        return None
    # Messages published without an id (by older producers) get a content hash,
    # so a redelivery of the same bytes still deduplicates.
    event_id = properties.message_id or hashlib.sha256(body).hexdigest()
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
        self.stop = threading.Event()
        self.ready = threading.Event()
        log.info("ingest: %d events already in the log", len(self.seen))

    def run(self) -> None:
        """Consume until ``stop`` is set, reconnecting with backoff on broker failures."""
        delay = 0.5
        while not self.stop.is_set():
            try:
                self._consume()
                delay = 0.5
            except (pika.exceptions.AMQPError, OSError) as error:
                self.ready.clear()
                log.warning("ingest: broker connection lost (%r); retrying in %.1fs", error, delay)
                self.stop.wait(delay)
                delay = min(delay * 2, 10.0)

    def _consume(self) -> None:
        params = pika.URLParameters(self.settings.amqp_url)
        params.heartbeat = 30
        params.blocked_connection_timeout = 60
        connection = pika.BlockingConnection(params)
        try:
            channel = connection.channel()
            channel.exchange_declare(self.settings.exchange, "direct", durable=True)
            declared = channel.queue_declare(self.settings.queue, durable=True)
            channel.queue_bind(
                self.settings.queue, self.settings.exchange, self.settings.routing_key
            )
            QUEUE_DEPTH.set(declared.method.message_count)
            channel.basic_qos(prefetch_count=self.settings.ingest_batch * 2)
            self.ready.set()
            pending: list[Delivery] = []
            last_depth = time.monotonic()
            for delivery in channel.consume(self.settings.queue, inactivity_timeout=0.02):
                if delivery[0] is not None:
                    pending.append(delivery)  # type: ignore[arg-type]
                    EVENTS_CONSUMED.inc()
                if pending and (delivery[0] is None or len(pending) >= self.settings.ingest_batch):
                    self._store(channel, connection, pending)
                    pending = []
                if time.monotonic() - last_depth > 2:
                    last_depth = time.monotonic()
                    depth = channel.queue_declare(self.settings.queue, durable=True, passive=True)
                    QUEUE_DEPTH.set(depth.method.message_count)
                if self.stop.is_set():
                    break
            # Unacked deliveries are requeued by the broker when the channel closes.
            channel.cancel()
        finally:
            self.ready.clear()
            if connection.is_open:
                connection.close()

    def _store(
        self,
        channel: BlockingChannel,
        connection: pika.BlockingConnection,
        deliveries: list[Delivery],
    ) -> None:
        """Log (fsync) and apply a batch in delivery order, then ack it in one frame."""
        batch: list[StoredEvent] = []
        for delivery in deliveries:
            decoded = decode(delivery)
            if isinstance(decoded, StoredEvent):
                batch.append(decoded)
            elif decoded == CONTROL_CLEANUP:
                self._write(connection, batch)
                batch = []
                self._cleanup(connection)
            elif decoded is None:
                EVENTS_REJECTED.labels("poison").inc()
                with self.stats.lock:
                    self.stats.rejected += 1
                log.warning("ingest: dropping unreadable message %r", delivery[2][:200])
            else:
                log.warning("ingest: unknown control command %r", decoded)
        self._write(connection, batch)
        channel.basic_ack(deliveries[-1][0].delivery_tag, multiple=True)
        EVENTS_ACKED.inc(len(deliveries))

    def _write(self, connection: pika.BlockingConnection, batch: list[StoredEvent]) -> None:
        if not batch:
            return
        fresh: list[StoredEvent] = []
        for event in batch:
            if event.event_id in self.seen:
                EVENTS_DUPLICATE.inc()
                with self.stats.lock:
                    self.stats.duplicates += 1
            else:
                self.seen.add(event.event_id)
                fresh.append(event)
        self.log.append(fresh)
        # Ratings are re-applied even for duplicates: the last attempt may have died
        # between the log write and Redis. The Lua script makes that harmless.
        self._retry_redis(connection, lambda: self.state.apply(batch))
        with self.stats.lock:
            self.stats.stored += len(fresh)
            self.stats.last_stored_at = time.time()
        if self.on_stored is not None and fresh:
            self.on_stored(fresh)

    def _cleanup(self, connection: pika.BlockingConnection) -> None:
        log.info("ingest: cleanup requested, truncating the interaction log")
        self.log.truncate()
        self.seen.clear()
        self._retry_redis(connection, self.state.clear_ratings)
        with self.stats.lock:
            self.stats.cleanups += 1
        if self.on_cleanup is not None:
            self.on_cleanup()

    def _retry_redis(self, connection: pika.BlockingConnection, action: Callable[[], None]) -> None:
        delay = 0.2
        while True:
            try:
                action()
                return
            except RedisError as error:
                if self.stop.is_set():
                    raise pika.exceptions.AMQPError("stopping with unstored batch") from error
                log.warning("ingest: redis unavailable (%r); retrying in %.1fs", error, delay)
                # sleep() keeps the broker connection's heartbeats going meanwhile.
                connection.sleep(delay)
                delay = min(delay * 2, 5.0)
