"""The probes' own listener: ``/healthcheck`` and ``/livez`` answered by a thread of their own.

A busy pod is not a dead one. The api answers everything on one event loop, and under a
flood of several hundred concurrent ``/recs`` each turn of that loop runs every ready
request: ``/healthcheck`` on the serving port waited behind them (measured 73-617 ms at
the median, up to 0.4-3.1 s, and 503 when its Redis round trip found the serving connection
pool exhausted), so the kubelet would take a pod out of service, or restart it, for being
busy, and move its load to the others. Recognising the path at the protocol layer would
not be enough: the answer still waits for the loop's turns, which the flood makes long.

So the probes get a port of their own, served by a thread with its own event loop and its
own Redis and broker connections (as controller-runtime's health probe address, neuro-san's
probe server, vLLM's ``--health-port``). Threads share the GIL, and every socket call gives
it up; a thread waiting for it gets it back within the switch interval (0.5 ms in the
serving processes, services/cli.py; Python's default 5 ms). So the
answer must take few socket calls: the check runs in the background on this thread, once
every ``refresh`` seconds, and a probe reads the latest result (accept, read, write: a few
switch intervals, whatever the serving loop carries). A check answered from the probe's
own round trips took 60-130 ms at the median under the flood, up to 0.44 s.

The serving path is untouched; the listener costs an idle api 2-2.5 ms of CPU a second (the
check, and uvicorn's tick every 0.1 s), measured 1.5 ms/s without it, 3.5-4.0 ms/s with it.

- ``GET /healthcheck``: the service's readiness check, the same body and status code as
  on the serving port, from a check at most ``refresh`` seconds (plus its own duration)
  older than the probe; 503 naming ``health_check`` if none finished for ``STALE_AFTER``.
- ``GET /livez``: liveness. 200 while the serving event loop keeps turning (a heartbeat it
  writes every ``HEARTBEAT_SECONDS``); 503 once it has not turned for ``stall_after``
  seconds, so a wedged loop is restarted even though this thread still answers. It does
  not follow Redis or the broker: an outage of a dependency must not become a restart storm.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import uvicorn
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from services.common.http_server import guarded_protocol

log = logging.getLogger(__name__)

# The body and the status code of a health answer.
type Health = tuple[dict[str, object], int]
type Check = Callable[[], Awaitable[Health]]
type CheckOpener = Callable[[], AbstractAsyncContextManager[Check]]

HEARTBEAT_SECONDS = 0.5
# A result older than this (plus the refresh period) says nothing any more: a check hung
# past its own timeouts (Redis 2 s, broker 5 s by default).
STALE_AFTER = 10.0
# Probes come one at a time from the kubelet; a few more than that is plenty, and keeps
# the port from spending the process's descriptors.
_MAX_CONNECTIONS = 64
_HEADER_TIMEOUT = 5.0
_MAX_HEADER_BYTES = 16384
_START_TIMEOUT = 30.0


class LoopHeartbeat:
    """The serving loop's last turn, written by a timer on that loop, read by the probe thread.

    A float attribute is replaced atomically under the GIL: no lock needed.
    """

    def __init__(self) -> None:
        self.last = time.monotonic()
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Beat on the running loop (call from it)."""
        self._beat()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _beat(self) -> None:
        self.last = time.monotonic()
        self._timer = asyncio.get_running_loop().call_later(HEARTBEAT_SECONDS, self._beat)

    def silent_for(self) -> float:
        return time.monotonic() - self.last


class RefreshedCheck:
    """A check run again and again on this loop; readers get the latest result at once."""

    def __init__(self, check: Check, refresh: float) -> None:
        self.check = check
        self.refresh = refresh
        self._latest: tuple[float, Health] | None = None
        self._first = asyncio.Event()

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                result = await self.check()
            except Exception as error:  # the checks catch their own; anything else is news
                log.exception("health check failed")
                result = {"status": "unavailable", "down": {"health_check": repr(error)}}, 503
            self._latest = (time.monotonic(), result)
            self._first.set()
            await asyncio.sleep(max(0.0, self.refresh - (time.monotonic() - started)))

    async def latest(self) -> Health:
        if self._latest is None:  # only right after start-up
            try:
                await asyncio.wait_for(self._first.wait(), STALE_AFTER)
            except TimeoutError:
                return {"status": "unavailable", "down": {"health_check": "none finished"}}, 503
        assert self._latest is not None
        finished, result = self._latest
        age = time.monotonic() - finished
        if age > self.refresh + STALE_AFTER:
            return {
                "status": "unavailable",
                "down": {"health_check": f"no check finished for {age:.1f} s"},
            }, 503
        return result


class ProbeApp:
    """The ASGI app of the probe port: two paths, nothing else."""

    def __init__(self, check: RefreshedCheck, heartbeat: LoopHeartbeat, stall_after: float):
        self.check = check
        self.heartbeat = heartbeat
        self.stall_after = stall_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] not in ("GET", "HEAD"):
            response = JSONResponse({"error": "method not allowed"}, 405, {"Allow": "GET"})
        elif scope["path"] == "/healthcheck":
            body, status = await self.check.latest()
            response = JSONResponse(body, status)
        elif scope["path"] == "/livez":
            response = self.liveness()
        else:
            response = JSONResponse({"error": "not found: /healthcheck or /livez"}, 404)
        await response(scope, receive, send)

    def liveness(self) -> JSONResponse:
        silent = round(self.heartbeat.silent_for(), 3)
        if silent > self.stall_after:
            return JSONResponse(
                {"status": "unavailable", "down": {"event_loop": f"no turn for {silent} s"}},
                503,
            )
        return JSONResponse({"status": "ok", "event_loop_silent_seconds": silent})


class ProbeListener:
    """A uvicorn server for :class:`ProbeApp` on its own thread and event loop."""

    def __init__(
        self,
        sock: socket.socket,
        open_check: CheckOpener,
        refresh: float,
        heartbeat: LoopHeartbeat,
        stall_after: float,
    ) -> None:
        self.sock = sock
        self.open_check = open_check
        self.refresh = refresh
        self.heartbeat = heartbeat
        self.stall_after = stall_after
        self._server: uvicorn.Server | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="probe-listener", daemon=True)

    def start(self) -> None:
        """Start the thread; return once it serves, raise if it could not start."""
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not (self._server is not None and self._server.started):
            if not self._thread.is_alive():
                raise RuntimeError(f"the probe listener did not start: {self._failure!r}")
            if time.monotonic() > deadline:
                raise RuntimeError("the probe listener did not start within 30 s")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None:
            # uvicorn polls the flag from its own loop (every 0.1 s), then closes the socket.
            self._server.should_exit = True
        self._thread.join(10)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # SystemExit too: uvicorn exits on a failed start
            self._failure = error
            log.exception("probe listener stopped")

    async def _serve(self) -> None:
        async with self.open_check() as check:
            refreshed = RefreshedCheck(check, self.refresh)
            refreshing = asyncio.create_task(refreshed.run())
            config = uvicorn.Config(
                ProbeApp(refreshed, self.heartbeat, self.stall_after),
                lifespan="off",
                log_config=None,
                access_log=False,
                http=guarded_protocol(_HEADER_TIMEOUT, _MAX_HEADER_BYTES, _MAX_CONNECTIONS),
                timeout_keep_alive=5,
            )
            self._server = uvicorn.Server(config)
            try:
                await self._server.serve(sockets=[self.sock])
            finally:
                refreshing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await refreshing


@asynccontextmanager
async def probe_listener(
    host: str, port: int, open_check: CheckOpener, *, refresh: float, stall_after: float
) -> AsyncIterator[None]:
    """Serve the probes on ``port`` while the context is open (0: no probe port).

    Enter it from the serving loop (an app's lifespan): that is the loop the heartbeat
    watches. The port is bound here, so a port in use fails the start-up, naming it.
    """
    if port == 0:
        yield
        return
    try:
        sock = socket.create_server((host, port))
    except OSError as error:
        raise OSError(error.errno, f"probe port {host}:{port}: {error.strerror}") from error
    heartbeat = LoopHeartbeat()
    heartbeat.start()
    listener = ProbeListener(sock, open_check, refresh, heartbeat, stall_after)
    try:
        # Off the loop: the listener's start opens Redis and broker connections.
        await asyncio.to_thread(listener.start)
        log.info("probes on http://%s:%d (/healthcheck, /livez)", host, port)
        yield
    finally:
        heartbeat.stop()
        await asyncio.to_thread(listener.stop)
        with contextlib.suppress(OSError):
            sock.close()
