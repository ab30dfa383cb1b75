"""Test-side access to the instance's queue, whichever broker backs it.

The tests publish and inspect through the broker's own client (pika, or the SQLite queue
module), not through the code under test.
"""

from __future__ import annotations

import json

import pika

from services.common.broker import QueuedMessage
from services.common.settings import Settings
from services.common.sqlite_queue import SqliteQueue, path_from_url
from services.trainer.consumers import amqp_message


def _sqlite(settings: Settings) -> SqliteQueue | None:
    if settings.amqp_url is not None:
        return None
    return SqliteQueue(path_from_url(settings.broker_url), settings.queue)


def publish_raw(
    settings: Settings,
    body: dict[str, object] | bytes,
    *,
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    """Put one persistent message on the instance's queue, as a producer would."""
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    queue = _sqlite(settings)
    if queue is not None:
        queue.publish_many([QueuedMessage(payload, message_id, headers or {})])
        queue.close()
        return
    connection = pika.BlockingConnection(pika.URLParameters(settings.broker_url))
    channel = connection.channel()
    channel.exchange_declare(settings.exchange, "direct", durable=True)
    channel.queue_declare(settings.queue, durable=True)
    channel.queue_bind(settings.queue, settings.exchange, settings.routing_key)
    channel.basic_publish(
        settings.exchange,
        settings.routing_key,
        payload,
        pika.BasicProperties(delivery_mode=2, message_id=message_id, headers=headers),
    )
    connection.close()


def queue_depth(settings: Settings) -> int:
    """Messages ready for delivery."""
    queue = _sqlite(settings)
    if queue is not None:
        depth = queue.depth()
        queue.close()
        return depth
    connection = pika.BlockingConnection(pika.URLParameters(settings.broker_url))
    declared = connection.channel().queue_declare(settings.queue, durable=True)
    connection.close()
    return int(declared.method.message_count)


def queued_messages(settings: Settings) -> list[QueuedMessage]:
    """Drain and return what sits in the instance's queue (acknowledging it)."""
    queue = _sqlite(settings)
    if queue is not None:
        leased = queue.lease("test-drain", 1_000_000, 60)
        queue.ack("test-drain", [entry.row_id for entry in leased])
        queue.close()
        return [entry.message for entry in leased]
    connection = pika.BlockingConnection(pika.URLParameters(settings.broker_url))
    channel = connection.channel()
    channel.queue_declare(settings.queue, durable=True)
    messages = []
    while True:
        method, properties, body = channel.basic_get(settings.queue, auto_ack=True)
        if method is None:
            break
        messages.append(amqp_message(properties, body))
    connection.close()
    return messages
