"""ConfirmedPublisher against the real RabbitMQ: batched writes, confirms, refusals, reopen."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import aiormq
import pika
import pytest
from pamqp import commands as spec

from services.common.broker import (
    BrokerUnavailableError,
    ConfirmedPublisher,
    ConfirmPipeline,
    Topology,
    declare,
)


@pytest.fixture
def topology(amqp_url: str) -> Iterator[Topology]:
    tag = uuid.uuid4().hex[:10]
    yield Topology(f"test.broker.{tag}", f"test_broker.{tag}", f"rk.{tag}")
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.queue_delete(f"test_broker.{tag}")
    channel.exchange_delete(f"test.broker.{tag}")
    connection.close()


@pytest.fixture
async def publisher(amqp_url: str, topology: Topology) -> AsyncIterator[ConfirmedPublisher]:
    publisher = ConfirmedPublisher(amqp_url, topology, timeout=5.0, max_inflight=2000)
    await publisher.connect()
    yield publisher
    await publisher.close()


def drain(amqp_url: str, queue: str) -> list[tuple[pika.BasicProperties, bytes]]:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    messages = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            break
        messages.append((properties, body))
    connection.close()
    return messages


async def test_concurrent_publishes_are_confirmed_in_order_with_their_ids(
    publisher: ConfirmedPublisher, amqp_url: str, topology: Topology
) -> None:
    bodies = [f'{{"n": {n}}}'.encode() for n in range(500)]
    # Started in order in one event-loop turn: they share socket writes and must arrive in order.
    ids = await asyncio.gather(*(publisher.publish(body) for body in bodies))
    assert len(set(ids)) == len(bodies)
    queued = drain(amqp_url, topology.queue)
    assert [body for _, body in queued] == bodies
    assert [properties.message_id for properties, _ in queued] == ids
    assert all(properties.delivery_mode == 2 for properties, _ in queued)
    assert all(properties.content_type == "application/json" for properties, _ in queued)


async def test_headers_and_a_body_larger_than_one_frame(
    publisher: ConfirmedPublisher, amqp_url: str, topology: Topology
) -> None:
    big = b"x" * 300_000  # above the negotiated frame size: split into several body frames
    await asyncio.gather(publisher.publish(big), publisher.publish(b"{}", headers={"k": "v"}))
    [(_, body), (properties, small)] = drain(amqp_url, topology.queue)
    assert body == big and small == b"{}"
    assert properties.headers == {"k": "v"}


async def test_unroutable_message_is_refused(
    publisher: ConfirmedPublisher, amqp_url: str, topology: Topology
) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    connection.channel().queue_unbind(topology.queue, topology.exchange, topology.routing_key)
    connection.close()
    with pytest.raises(BrokerUnavailableError, match="NO_ROUTE"):
        await publisher.publish(b"{}")
    # The returned message did not disturb the confirmations of the next ones.
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    connection.channel().queue_bind(topology.queue, topology.exchange, topology.routing_key)
    connection.close()
    await asyncio.gather(*(publisher.publish(b"{}") for _ in range(10)))
    assert len(drain(amqp_url, topology.queue)) == 10


async def test_a_channel_closed_by_the_broker_fails_its_publishes_and_is_reopened(
    publisher: ConfirmedPublisher, amqp_url: str, topology: Topology
) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    connection.channel().exchange_delete(topology.exchange)
    connection.close()
    # Publishing to a missing exchange makes the broker close the channel (404).
    results = await asyncio.gather(
        *(publisher.publish(b"{}") for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(result, BrokerUnavailableError) for result in results)
    # The next publish opens a new channel, declares the topology again and is confirmed.
    await publisher.publish(b'{"after": 1}')
    assert [body for _, body in drain(amqp_url, topology.queue)] == [b'{"after": 1}']
    assert publisher.connected


async def test_no_confirmation_in_time_is_a_timeout_and_later_ones_still_match(
    amqp_url: str, topology: Topology
) -> None:
    connection = await aiormq.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await declare(channel, topology)
        pipeline = ConfirmPipeline(channel, topology)
        with pytest.raises(TimeoutError):
            await pipeline.publish(b'{"n": 1}', "late", None, timeout=0)
        # The late message was still sent; its ack is dropped, the next one matches its own.
        assert isinstance(await pipeline.publish(b'{"n": 2}', "next", None, 5), spec.Basic.Ack)
    finally:
        await connection.close()
    assert [body for _, body in drain(amqp_url, topology.queue)] == [b'{"n": 1}', b'{"n": 2}']
