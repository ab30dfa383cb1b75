"""Shared fixtures: real Redis and RabbitMQ, one isolated instance namespace per test."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pika
import pytest
from redis import Redis

from services.common.settings import Settings

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def _answers(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port_url(scheme: str) -> str:
    """A URL nothing listens on: the dependency is 'down'."""
    return f"{scheme}://guest:guest@127.0.0.1:{free_port()}/"


@pytest.fixture(scope="session")
def redis_url() -> str:
    if not _answers(REDIS_URL, 6379):
        pytest.fail(f"Redis is not answering at {REDIS_URL}; .ci/run starts it")
    return REDIS_URL


@pytest.fixture(scope="session")
def amqp_url() -> str:
    if not _answers(AMQP_URL, 5672):
        pytest.fail(f"RabbitMQ is not answering at {AMQP_URL}; .ci/run starts it")
    return AMQP_URL


@pytest.fixture
def settings(redis_url: str, amqp_url: str, tmp_path: Path) -> Iterator[Settings]:
    """Settings of a fresh instance: own key prefix, queue, routing key and data dir."""
    tag = uuid.uuid4().hex[:10]
    instance = Settings(
        REDIS_URL=redis_url,
        AMQP_URL=amqp_url,
        key_prefix=f"test:{tag}:",
        queue=f"test_interactions.{tag}",
        routing_key=f"test.{tag}",
        data_dir=tmp_path / "data",
        TRAIN_INTERVAL=0.5,
        metrics_port=0,
        lightfm_epochs=5,
    )
    yield instance
    redis = Redis.from_url(redis_url)
    keys = list(redis.scan_iter(match=f"{instance.key_prefix}*", count=1000))
    if keys:
        redis.delete(*keys)
    redis.close()
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    connection.channel().queue_delete(instance.queue)
    connection.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    client.close()


def queued_messages(settings: Settings) -> list[tuple[pika.BasicProperties, bytes]]:
    """Drain and return what sits in the instance's queue (acking it)."""
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    channel = connection.channel()
    messages = []
    while True:
        method, properties, body = channel.basic_get(settings.queue, auto_ack=True)
        if method is None:
            break
        messages.append((properties, body))
    connection.close()
    return messages
