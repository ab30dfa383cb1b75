"""The broker interface, RabbitMQ topology and the confirmed AMQP publisher (collector, api).

Two implementations share one small interface (:class:`Publisher`), chosen by the URL
scheme of ``Settings.broker_url``: ``amqp://`` is RabbitMQ (production), ``sqlite://`` the
embedded queue of :mod:`services.common.sqlite_queue` (the local default).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import aiormq
import aiormq.abc
import pamqp.frame
from aiormq.abc import ChannelFrame, ConfirmationFrameType
from pamqp import commands as spec
from pamqp.body import ContentBody
from pamqp.common import FieldTable
from pamqp.header import ContentHeader

if TYPE_CHECKING:
    from services.common.settings import Settings

log = logging.getLogger(__name__)

# Header marking a control message (not an InteractEvent) on the interaction queue.
CONTROL_HEADER = "x-recsys-control"
CONTROL_CLEANUP = "cleanup"
# Header of the cleanup control message: the token the ingester clears once the log is cut.
CLEANUP_TOKEN_HEADER = "x-recsys-cleanup-token"


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


async def declare(channel: aiormq.abc.AbstractChannel, topology: Topology) -> None:
    """Declare the durable direct exchange and queue the original service used."""
    await channel.exchange_declare(topology.exchange, exchange_type="direct", durable=True)
    await channel.queue_declare(topology.queue, durable=True)
    await channel.queue_bind(topology.queue, topology.exchange, routing_key=topology.routing_key)


class ConfirmedPublisher:
    """Publishes persistent messages and returns only once the broker confirmed them.

    One long-lived channel in confirm mode: concurrent publishes are in flight together
    and confirmed asynchronously, so throughput is not capped by one round trip each.
    A lost connection or channel is reopened by the next publish.
    """

    def __init__(self, url: str, topology: Topology, *, timeout: float, max_inflight: int) -> None:
        self._url = url
        self._topology = topology
        self._timeout = timeout
        self._slots = asyncio.Semaphore(max_inflight)
        self._connection: aiormq.abc.AbstractConnection | None = None
        self._pipeline: ConfirmPipeline | None = None
        self._lock = asyncio.Lock()

    async def connect(self) -> None:
        """Connect now if possible; failures are retried lazily on the next publish."""
        try:
            await self._ensure()
        except Exception as error:
            log.warning("broker not reachable at startup: %s", error)

    async def _ensure(self) -> ConfirmPipeline:
        pipeline = self._pipeline
        if pipeline is not None and not pipeline.channel.is_closed:
            return pipeline
        # One deadline for waiting on the lock, connecting, opening and declaring: a broker
        # that accepts the socket but does not answer must not hold requests past it.
        async with asyncio.timeout(self._timeout), self._lock:
            pipeline = self._pipeline
            if pipeline is not None and not pipeline.channel.is_closed:
                return pipeline
            if self._connection is None or self._connection.is_closed:
                self._connection = await aiormq.connect(self._url)
            channel = await self._connection.channel(publisher_confirms=True)
            await declare(channel, self._topology)
            self._pipeline = ConfirmPipeline(channel, self._topology)
            return self._pipeline

    @property
    def connected(self) -> bool:
        return (
            self._connection is not None
            and not self._connection.is_closed
            and self._pipeline is not None
            and not self._pipeline.channel.is_closed
        )

    async def publish(self, body: bytes, *, headers: dict[str, str] | None = None) -> str:
        """Publish one persistent message; return its message id once confirmed."""
        # 128 random bits as 32 hex digits, like uuid4().hex (same os.urandom source) at a
        # fifth of its cost: no UUID object per event.
        message_id = os.urandom(16).hex()
        if self._slots.locked():
            try:
                await asyncio.wait_for(self._slots.acquire(), self._timeout)
            except TimeoutError as error:
                raise BrokerUnavailableError("too many messages awaiting confirmation") from error
        else:
            await self._slots.acquire()  # a free slot: returns without suspending
        try:
            pipeline = await self._ensure()
            confirmation = await pipeline.publish(body, message_id, headers, self._timeout)
        except BrokerUnavailableError:
            raise
        except Exception as error:
            raise BrokerUnavailableError(f"broker did not confirm: {error!r}") from error
        finally:
            self._slots.release()
        if not isinstance(confirmation, spec.Basic.Ack):
            raise BrokerUnavailableError(f"broker refused the message: {confirmation!r}")
        return message_id

    async def _channel(self) -> aiormq.abc.AbstractChannel:
        return (await self._ensure()).channel

    async def purge(self) -> int:
        """Drop every message waiting in the queue (used by /cleanup)."""
        channel = await self._channel()
        result = await channel.queue_purge(self._topology.queue)
        return int(result.message_count or 0)

    async def queue_depth(self) -> int:
        channel = await self._channel()
        declared = await channel.queue_declare(self._topology.queue, durable=True)
        return int(declared.message_count or 0)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
        self._connection = None
        self._pipeline = None


class ConfirmPipeline:
    """Publishes on one aiormq channel in confirm mode, many messages per socket write.

    aiormq's ``basic_publish`` queues, writes and drains every message on its own: one
    send() per message plus a lock, a queue hop and two futures. Profiled under wrk, that
    was the largest share of the collector's CPU per event once the HTTP side was lean
    (docs/benchmarks.md, section 2). Here the messages published while a write is pending
    join one batch that goes out as a single write.

    Confirmation stays aiormq's own bookkeeping, used exactly as ``basic_publish`` uses it
    (delivery tag, ``confirmations``, ``message_id_delivery_tag``, the channel lock): the
    broker's acks (also ``multiple``), nacks, returns of mandatory messages and a closing
    channel resolve these futures just as they resolve basic_publish's.
    """

    def __init__(self, channel: aiormq.abc.AbstractChannel, topology: Topology) -> None:
        if not isinstance(channel, aiormq.Channel):
            raise TypeError(f"ConfirmPipeline needs aiormq.Channel, got {type(channel)!r}")
        self.channel: aiormq.Channel = channel
        # The method frame is the same for every message: marshalled once.
        self._method = pamqp.frame.marshal(
            spec.Basic.Publish(
                exchange=topology.exchange, routing_key=topology.routing_key, mandatory=True
            ),
            channel.number,
        )
        self._batch: list[tuple[spec.Basic.Properties, bytes, asyncio.Future[Any]]] = []

    async def publish(
        self, body: bytes, message_id: str, headers: dict[str, str] | None, timeout: float
    ) -> ConfirmationFrameType:
        """Queue one persistent message; return the broker's answer to it.

        Raises TimeoutError if there is none within ``timeout`` seconds.
        """
        table: FieldTable = dict(headers or {})
        properties = spec.Basic.Properties(
            delivery_mode=2,  # persistent
            content_type="application/json",
            message_id=message_id,
            headers=table,
        )
        confirmation: asyncio.Future[Any] = self.channel.create_future()
        self._batch.append((properties, body, confirmation))
        if len(self._batch) == 1:
            # First of a batch: the flush runs once this task yields, taking every message
            # queued meanwhile by the other requests of this event-loop turn.
            _background(asyncio.ensure_future(self._flush()))
        # A bare timer rather than asyncio.timeout() (a third of its cost, on every event).
        # Cancelling, not failing, the confirmation makes aiormq drop a late answer quietly.
        timer = asyncio.get_running_loop().call_later(timeout, confirmation.cancel)
        try:
            result: ConfirmationFrameType = await confirmation
            return result
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if confirmation.cancelled() and task is not None and not task.cancelling():
                raise TimeoutError("no confirmation from the broker in time") from None
            raise  # this request itself was cancelled
        finally:
            timer.cancel()
            self.channel.message_id_delivery_tag.pop(message_id, None)

    async def _flush(self) -> None:
        batch: list[tuple[spec.Basic.Properties, bytes, asyncio.Future[Any]]] = []
        try:
            async with self.channel.lock:  # delivery tags must follow the order on the wire
                batch, self._batch = self._batch, []
                await self._send(batch)
        except BaseException as error:
            if not batch:  # the lock was refused (channel closed) before the batch was taken
                batch, self._batch = self._batch, []
            for _, _, confirmation in batch:
                if not confirmation.done():
                    confirmation.set_exception(BrokerUnavailableError(f"not sent: {error!r}"))
            if not isinstance(error, Exception):
                raise

    async def _send(
        self, batch: list[tuple[spec.Basic.Properties, bytes, asyncio.Future[Any]]]
    ) -> None:
        channel = self.channel
        first_tag = channel.delivery_tag + 1
        payload = []
        for properties, body, confirmation in batch:
            channel.delivery_tag += 1
            channel.confirmations[channel.delivery_tag] = confirmation
            # Lets aiormq match a returned (unroutable) message to its confirmation.
            channel.message_id_delivery_tag[str(properties.message_id)] = channel.delivery_tag
            payload.append(self._method)
            header = ContentHeader(body_size=len(body), properties=properties)
            payload.append(pamqp.frame.marshal(header, channel.number))
            size = channel.max_content_size
            for start in range(0, len(body), size):
                chunk = ContentBody(body[start : start + size])
                payload.append(pamqp.frame.marshal(chunk, channel.number))
        try:
            await channel.write_queue.put(
                ChannelFrame(payload=b"".join(payload), should_close=False)
            )
        except BaseException:
            # The broker never saw these: give their sequence numbers back, as basic_publish
            # does, or every later confirmation would be matched to the wrong message.
            channel.delivery_tag = first_tag - 1
            for tag in range(first_tag, first_tag + len(batch)):
                channel.confirmations.pop(tag, None)
            raise


_tasks: set[asyncio.Future[None]] = set()


def _background(task: asyncio.Future[None]) -> None:
    """Keep a reference until done (the loop only keeps weak ones)."""
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
