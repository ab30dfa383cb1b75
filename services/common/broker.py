"""The broker interface, RabbitMQ topology and the confirmed AMQP publisher (collector, api).

Two implementations share one small interface (:class:`Publisher`), chosen by the URL
scheme of ``Settings.broker_url``: ``amqp://`` is RabbitMQ (production), ``sqlite://`` the
embedded queue of :mod:`services.common.sqlite_queue` (the local default).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection
from pamqp.commands import Basic

if TYPE_CHECKING:
    from services.common.settings import Settings

log = logging.getLogger(__name__)

# Header marking a control message (not an InteractEvent) on the interaction queue.
CONTROL_HEADER = "x-recsys-control"
CONTROL_CLEANUP = "cleanup"


@dataclass(frozen=True)
class Topology:
    exchange: str
    queue: str
    routing_key: str


class BrokerUnavailableError(Exception):
    """The broker did not confirm in time or is unreachable: nothing was accepted."""


@dataclass(frozen=True)
class QueuedMessage:
    """One message as either broker delivers it to the ingester."""

    body: bytes
    message_id: str | None
    headers: Mapping[str, object] = field(default_factory=dict)
    persistent: bool = True


class Publisher(Protocol):
    """What the collector and the api need from a broker."""

    @property
    def connected(self) -> bool: ...

    async def connect(self) -> None: ...

    async def publish(self, body: bytes, *, headers: dict[str, str] | None = None) -> str:
        """Return the message id once the broker holds a durable copy."""
        ...

    async def purge(self) -> int: ...

    async def queue_depth(self) -> int: ...

    async def close(self) -> None: ...


def open_publisher(settings: Settings, *, max_inflight: int) -> Publisher:
    """The publisher for ``settings.broker_url`` (not connected yet)."""
    url = settings.broker_url
    if url.startswith("sqlite:"):
        from services.common.sqlite_queue import SqlitePublisher

        if settings.amqp_url is None:
            # Loud on purpose: outside `recsys up` (which sets AMQP_URL for its children),
            # e.g. in a cluster, this means AMQP_URL is missing.
            log.warning("AMQP_URL not set: using the embedded SQLite queue %s", url)
        return SqlitePublisher(url, settings.queue, timeout=settings.publish_timeout)
    return ConfirmedPublisher(
        url,
        Topology(settings.exchange, settings.queue, settings.routing_key),
        timeout=settings.publish_timeout,
        max_inflight=max_inflight,
    )


async def declare(channel: AbstractChannel, topology: Topology) -> AbstractExchange:
    """Declare the durable direct exchange and queue the original service used."""
    exchange = await channel.declare_exchange(
        topology.exchange, aio_pika.ExchangeType.DIRECT, durable=True
    )
    queue = await channel.declare_queue(topology.queue, durable=True)
    await queue.bind(exchange, topology.routing_key)
    return exchange


class ConfirmedPublisher:
    """Publishes persistent messages and returns only once the broker confirmed them.

    One long-lived channel in confirm mode: concurrent publishes are in flight together
    and confirmed asynchronously, so throughput is not capped by one round trip each.
    """

    def __init__(self, url: str, topology: Topology, *, timeout: float, max_inflight: int) -> None:
        self._url = url
        self._topology = topology
        self._timeout = timeout
        self._slots = asyncio.Semaphore(max_inflight)
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._lock = asyncio.Lock()

    async def connect(self) -> None:
        """Connect now if possible; failures are retried lazily on the next publish."""
        try:
            await self._ensure()
        except Exception as error:
            log.warning("broker not reachable at startup: %s", error)

    async def _ensure(self) -> AbstractExchange:
        if self._exchange is not None and self._channel is not None and not self._channel.is_closed:
            return self._exchange
        async with self._lock:
            if self._exchange is not None and self._channel and not self._channel.is_closed:
                return self._exchange
            if self._connection is None or self._connection.is_closed:
                self._connection = await asyncio.wait_for(
                    aio_pika.connect_robust(self._url, timeout=self._timeout),
                    self._timeout,
                )
            self._channel = await self._connection.channel(publisher_confirms=True)
            self._exchange = await declare(self._channel, self._topology)
            return self._exchange

    @property
    def connected(self) -> bool:
        return (
            self._connection is not None
            and not self._connection.is_closed
            and self._channel is not None
            and not self._channel.is_closed
        )

    async def publish(self, body: bytes, *, headers: dict[str, str] | None = None) -> str:
        """Publish one persistent message; return its message id once confirmed."""
        message_id = uuid.uuid4().hex
        try:
            await asyncio.wait_for(self._slots.acquire(), self._timeout)
        except TimeoutError as error:
            raise BrokerUnavailableError("too many messages awaiting confirmation") from error
        try:
            exchange = await self._ensure()
            message = aio_pika.Message(
                body,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                content_type="application/json",
                message_id=message_id,
                headers=dict(headers or {}),
            )
            confirmation = await exchange.publish(
                message, self._topology.routing_key, mandatory=True, timeout=self._timeout
            )
        except BrokerUnavailableError:
            raise
        except Exception as error:
            raise BrokerUnavailableError(f"broker did not confirm: {error!r}") from error
        finally:
            self._slots.release()
        if not isinstance(confirmation, Basic.Ack):
            raise BrokerUnavailableError(f"broker refused the message: {confirmation!r}")
        return message_id

    async def purge(self) -> int:
        """Drop every message waiting in the queue (used by /cleanup)."""
        await self._ensure()
        assert self._channel is not None
        queue = await self._channel.declare_queue(self._topology.queue, durable=True)
        result = await queue.purge()
        return int(result.message_count or 0)

    async def queue_depth(self) -> int:
        await self._ensure()
        assert self._channel is not None
        queue = await self._channel.declare_queue(self._topology.queue, durable=True)
        return int(queue.declaration_result.message_count or 0)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
        self._connection = None
        self._channel = None
        self._exchange = None
