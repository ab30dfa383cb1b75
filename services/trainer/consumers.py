"""Batch consumers of the interaction queue, one per broker; the ingester's only broker code.

A consumer delivers batches to ``handle(messages, pause)`` and acknowledges a batch only
after ``handle`` returned. ``pause(seconds)`` is how ``handle`` waits (e.g. for Redis)
without losing the batch: it keeps AMQP heartbeats going, or extends the SQLite lease.
Unacknowledged messages go back to the queue when the consumer stops or dies.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from typing import Protocol

import pika
import pika.exceptions

from services.common.broker import QueuedMessage
from services.common.metrics import EVENTS_ACKED, EVENTS_CONSUMED, QUEUE_DEPTH
from services.common.settings import Settings
from services.common.sqlite_queue import SqliteQueue, path_from_url

Pause = Callable[[float], None]
Handler = Callable[[list[QueuedMessage], Pause], None]


def amqp_message(properties: pika.BasicProperties, body: bytes) -> QueuedMessage:
    """A RabbitMQ delivery in the broker-neutral shape the ingester handles."""
    return QueuedMessage(
        body,
        properties.message_id,
        dict(properties.headers or {}),
        persistent=properties.delivery_mode == 2,
    )


class BatchConsumer(Protocol):
    # Errors after which ``consume`` is simply called again (with backoff).
    errors: tuple[type[BaseException], ...]

    def consume(self, handle: Handler, stop: threading.Event, ready: threading.Event) -> None:
        """Deliver batches until ``stop`` is set; raise one of ``errors`` on broker loss."""
        ...


def open_consumer(settings: Settings) -> BatchConsumer:
    url = settings.broker_url
    if url.startswith("sqlite:"):
        return SqliteConsumer(settings)
    return AmqpConsumer(settings)


class AmqpConsumer:
    """RabbitMQ through pika's BlockingConnection; acks a batch with one ``multiple`` ack."""

    errors: tuple[type[BaseException], ...] = (pika.exceptions.AMQPError, OSError)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def consume(self, handle: Handler, stop: threading.Event, ready: threading.Event) -> None:
        settings = self.settings
        params = pika.URLParameters(settings.broker_url)
        params.heartbeat = 30
        params.blocked_connection_timeout = 60
        connection = pika.BlockingConnection(params)
        try:
            channel = connection.channel()
            channel.exchange_declare(settings.exchange, "direct", durable=True)
            declared = channel.queue_declare(settings.queue, durable=True)
            channel.queue_bind(settings.queue, settings.exchange, settings.routing_key)
            QUEUE_DEPTH.set(declared.method.message_count)
            channel.basic_qos(prefetch_count=settings.ingest_batch * 2)
            ready.set()
            pending: list[QueuedMessage] = []
            last_tag = 0
            last_depth = time.monotonic()
            for method, properties, body in channel.consume(
                settings.queue, inactivity_timeout=0.02
            ):
                if method is not None and properties is not None and body is not None:
                    pending.append(amqp_message(properties, body))
                    last_tag = method.delivery_tag
                    EVENTS_CONSUMED.inc()
                if pending and (method is None or len(pending) >= settings.ingest_batch):
                    # connection.sleep() keeps heartbeats going while handle() waits.
                    handle(pending, connection.sleep)
                    channel.basic_ack(last_tag, multiple=True)
                    EVENTS_ACKED.inc(len(pending))
                    pending = []
                if time.monotonic() - last_depth > 2:
                    last_depth = time.monotonic()
                    depth = channel.queue_declare(settings.queue, durable=True, passive=True)
                    QUEUE_DEPTH.set(depth.method.message_count)
                if stop.is_set():
                    break
            # Unacked deliveries are requeued by the broker when the channel closes.
            channel.cancel()
        finally:
            ready.clear()
            if connection.is_open:
                connection.close()


class SqliteConsumer:
    """The embedded queue: lease a batch, handle it, delete it; poll when idle."""

    errors: tuple[type[BaseException], ...] = (sqlite3.Error, OSError)
    lease_seconds = 60.0
    idle_poll = 0.02

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.queue = SqliteQueue(path_from_url(settings.broker_url), settings.queue)
        # Unique per consumer object, so a reconnect takes back only its own leases.
        self.owner = f"{os.getpid()}:{uuid.uuid4().hex}"

    def consume(self, handle: Handler, stop: threading.Event, ready: threading.Event) -> None:
        queue = self.queue
        try:
            # Messages leased by a consumer that died are delivered again (as RabbitMQ
            # requeues the unacked messages of a closed channel).
            queue.release(self.owner)
            QUEUE_DEPTH.set(queue.depth())
            ready.set()
            last_depth = time.monotonic()
            while not stop.is_set():
                leased = queue.lease(self.owner, self.settings.ingest_batch, self.lease_seconds)
                if leased:
                    EVENTS_CONSUMED.inc(len(leased))
                    row_ids = [entry.row_id for entry in leased]

                    def pause(seconds: float, row_ids: list[int] = row_ids) -> None:
                        queue.extend(self.owner, row_ids, self.lease_seconds)
                        stop.wait(seconds)

                    handle([entry.message for entry in leased], pause)
                    queue.ack(self.owner, row_ids)
                    EVENTS_ACKED.inc(len(row_ids))
                else:
                    stop.wait(self.idle_poll)
                if time.monotonic() - last_depth > 2:
                    last_depth = time.monotonic()
                    QUEUE_DEPTH.set(queue.depth())
        finally:
            ready.clear()
            with contextlib.suppress(*self.errors):  # else the lease runs out by itself
                queue.release(self.owner)
            queue.close()
