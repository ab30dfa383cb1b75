"""The HTTP server's connection guards: a header deadline and a connection cap (slowloris).

uvicorn closes an idle keep-alive connection after ``timeout_keep_alive``, but it gives a
connection that has sent part of a request's headers no deadline at all, and it caps
nothing: 20,000 half-sent requests kept the api unusable for over a minute (issue #6); at
its open-files limit it stopped accepting anyone. uvicorn has no setting for either, so its
httptools protocol is extended here:

- **header deadline**: a connection must finish a request's headers within
  ``header_timeout`` seconds of opening, or of the first byte of that request; otherwise it
  is closed. The deadline is not reset by more bytes, so dripping one byte at a time
  does not extend it;
- **header size**: headers still incomplete after ``max_header_bytes`` bytes get a 431 and
  the connection is closed (httptools, unlike h11, has no bound: a client could fill the
  memory for the whole deadline);
- **connection cap**: beyond ``max_connections`` open connections, the connection that has
  been idle longest (waiting for headers, or between keep-alive requests) is closed. A
  request being processed is never cut, and a fresh client whose request arrives in one
  packet is served even while an attacker holds the cap.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import weakref
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from services.common.metrics import HTTP_CONNECTIONS_CLOSED

log = logging.getLogger(__name__)

# File descriptors a server needs beside its client connections (Redis, broker, logs).
_SPARE_DESCRIPTORS = 256

_TIMED_OUT = HTTP_CONNECTIONS_CLOSED.labels("header_timeout")
_EVICTED = HTTP_CONNECTIONS_CLOSED.labels("connection_cap")
_TOO_LARGE = HTTP_CONNECTIONS_CLOSED.labels("header_size")
_TOO_LARGE_BODY = b'{"error":"request header fields are too large"}'
_HEADERS_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_TOO_LARGE_BODY), _TOO_LARGE_BODY)
)


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header deadline and a connection cap.

    Use :func:`guarded_protocol` to get a subclass bound to one server's limits.
    """

    header_timeout: float = 10.0
    max_header_bytes: int = 65536
    max_connections: int = 4096
    # Connections not processing a request, oldest idle first (a dict keeps insertion
    # order): the eviction candidates. One per server, set by guarded_protocol().
    idle: dict[GuardedHttpProtocol, None]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()
        if len(self.connections) > self.max_connections:
            oldest = next(iter(self.idle))
            _EVICTED.inc()
            oldest._close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        self.idle.pop(self, None)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._header_deadline is not None:
            # Still no end of headers after this chunk (one that ended them, with a body
            # after them, is not counted).
            self._header_bytes += len(data)
            if self._header_bytes > self.max_header_bytes:
                _TOO_LARGE.inc()
                if not self.transport.is_closing():
                    self.transport.write(_HEADERS_TOO_LARGE)
                self._close()
                return
        # Bytes that begin no request (stray CRLFs) cancelled uvicorn's keep-alive timer
        # without starting a request: give them the header deadline instead.
        if (
            self._header_deadline is None
            and self.timeout_keep_alive_task is None
            and (self.cycle is None or self.cycle.response_complete)
            and not self.transport.is_closing()
        ):
            self._await_headers()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_deadline is None:
            self._await_headers()

    def on_headers_complete(self) -> None:
        self._cancel_deadline()
        self.idle.pop(self, None)
        super().on_headers_complete()
        cycle = self.cycle  # this request's, unless an upgrade returned early
        if cycle is not None and cycle.transport is self.transport:
            cycle.transport = OneWriteResponse(self.transport, cycle)  # type: ignore[assignment]

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Unless a pipelined request started meanwhile (self.cycle is the latest parsed).
        if not self.transport.is_closing() and self.cycle.response_complete:
            self.idle[self] = None  # now the most recently active idle connection

    def _await_headers(self) -> None:
        self.idle[self] = None
        self._header_bytes = 0
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_late)

    def _cancel_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_late(self) -> None:
        self._header_deadline = None
        if self.cycle is None or self.cycle.response_complete:
            _TIMED_OUT.inc()
            self._close()

    def _close(self) -> None:
        self.idle.pop(self, None)
        self._cancel_deadline()
        if not self.transport.is_closing():
            self.transport.close()


class OneWriteResponse:
    """One request's view of the connection: the response's status line and headers leave
    in the same write as its first body bytes.

    uvicorn writes them on ``http.response.start`` and the body on ``http.response.body``:
    two send() calls per answer, the largest share of a prefetched /recs's event-loop time
    under wrk (py-spy: 18% and 9%). Holding the header block until the body comes costs
    nothing (the ASGI app sends both in one go) and saves a system call per response.

    The cycle is held weakly: it holds this object as its transport, and a strong reference
    back made every request a reference cycle that only the garbage collector could free
    (about 7 objects per request: a hello app on this protocol spent 12% of its time under
    wrk in collections, every request in flight waiting).
    """

    __slots__ = ("_cycle", "_head", "_held", "_started", "_transport")

    def __init__(self, transport: asyncio.Transport, cycle: RequestResponseCycle) -> None:
        self._transport = transport
        self._cycle = weakref.ref(cycle)
        self._head = cycle.scope["method"] == "HEAD"
        self._held: bytes | None = None
        self._started = False

    def write(self, data: bytes) -> None:
        if self._held is not None:
            data, self._held = self._held + data, None
        elif not self._started and _response_started(self._cycle()):
            # The header block: the first write once the response has started (a 100
            # Continue goes before it). A HEAD answer has no body write to carry it.
            self._started = True
            if not self._head:
                self._held = data
                return
        self._transport.write(data)

    def close(self) -> None:
        if self._held is not None:
            self._transport.write(self._held)
            self._held = None
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _response_started(cycle: RequestResponseCycle | None) -> bool:
    # None only once uvicorn dropped the cycle: nothing of that response is written then.
    return cycle is not None and cycle.response_started


def guarded_protocol(
    header_timeout: float, max_header_bytes: int, max_connections: int
) -> type[GuardedHttpProtocol]:
    """A protocol class for one uvicorn server (``uvicorn.run(http=...)``) with its limits."""
    limits = {
        "header_timeout": header_timeout,
        "max_header_bytes": max_header_bytes,
        "max_connections": max_connections,
    }
    return type("GuardedHttpProtocol", (GuardedHttpProtocol,), {**limits, "idle": {}})


def raise_descriptor_limit(max_connections: int) -> None:
    """Lift the soft open-files limit so the connection cap, not EMFILE, is what binds.

    At EMFILE asyncio stops accepting for a second at a time and every client waits in the
    kernel's backlog; a cap below the limit keeps accepting and evicts idle connections.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + _SPARE_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        if target < wanted:
            log.warning(
                "open-files limit %d is below RECSYS_HTTP_MAX_CONNECTIONS (%d) plus %d spare: "
                "lower the cap or raise the limit (ulimit -n)",
                target,
                max_connections,
                _SPARE_DESCRIPTORS,
            )
