"""HTTP plumbing shared by the api and the collector: metrics, errors, limits, CORS."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.fast_lane import CLIENT_CLOSED_REQUEST, FastLane, LaneHandler
from services.common.metrics import OVERLOAD_REJECTIONS, RequestMetrics, route_label
from services.common.settings import Settings

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4 * 1024 * 1024

TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def telemetry(settings: Settings) -> TelemetryConfig | None:
    """FastAPI(telemetry=...): its defaults only when Settings.opentelemetry (see there why)."""
    return None if settings.opentelemetry else TELEMETRY_OFF


class MetricsMiddleware:
    """Counts and times every request by route template (bounded label values)."""

    def __init__(self, app: ASGIApp, metrics: RequestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        started = disconnected = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
            await send(message)

        async def receive_wrapper() -> Message:
            nonlocal disconnected
            message = await receive()
            if message["type"] == "http.disconnect" and not started:
                disconnected = True
            return message

        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        finally:
            if disconnected:
                # The client left before the answer (nginx's 499), which then went nowhere:
                # neither a server error (500) nor a bad body (the route's 400).
                status = CLIENT_CLOSED_REQUEST
            self.metrics.observe(route_label(scope.get("route")), scope["method"], status, start)


class CORS(CORSMiddleware):
    """Starlette's CORS middleware, with a shortcut for requests without an Origin header.

    Those are most requests (servers, load generators). For them Starlette only adds
    ``Vary: Origin`` to the response, yet parses every request header and rewraps the
    response headers on each call: 6 of the ~23 us the collector's ASGI stack spent per
    /interact event (measured in-process). The shortcut adds the same header for less.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or any(name == b"origin" for name, _ in scope["headers"]):
            await super().__call__(scope, receive, send)
            return

        async def send_with_vary(message: Message) -> None:
            if message["type"] != "http.response.start":
                await send(message)
                return
            headers = message.get("headers", [])
            if any(name.lower() == b"vary" for name, _ in headers):
                # Starlette merges into an existing Vary: let it, for identical output.
                await super(CORS, self).send(message, send, Headers(scope=scope))
                return
            message["headers"] = [*headers, (b"vary", b"Origin")]
            await send(message)

        await self.app(scope, receive, send_with_vary)


class BodySizeLimit:
    """Refuses bodies over the limit with 413 before they are parsed."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.limit:
                    await _too_large(self.limit)(scope, receive, send)
                    return
            elif name == b"transfer-encoding":
                chunked = True
        if not chunked:
            # HTTP/1.1 framing: the server hands over exactly Content-Length bytes, checked
            # above, or none without it (a GET), so there is nothing to count (and no
            # wrappers to pay for per request).
            await self.app(scope, receive, send)
            return
        received = 0
        too_large = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # Not an exception: the framework would turn it into a 400 "error
                    # parsing the body". The app sees a disconnect and its answer is dropped.
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_large and not started:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, limited_receive, guarded_send)
        if too_large and not started:
            await _too_large(self.limit)(scope, receive, send)


class ConcurrencyLimit:
    """Bounds the requests in flight per process; overflow gets a quick 503, not a pile-up.

    Up to ``max_concurrent`` requests run; up to ``max_waiting`` more wait at most
    ``max_wait`` seconds for a slot; the rest are refused at once with ``Retry-After``.
    Probes and metrics are exempt so an overloaded pod is not also declared dead.
    """

    EXEMPT = frozenset({"/healthcheck", "/metrics"})

    def __init__(
        self,
        app: ASGIApp,
        max_concurrent: int,
        max_waiting: int,
        max_wait: float,
        slots: asyncio.Semaphore | None = None,
    ) -> None:
        self.app = app
        self.max_waiting = max_waiting
        self.max_wait = max_wait
        # Shared with the service's FastLane, whose requests hold the same slots.
        self._slots = slots or asyncio.Semaphore(max_concurrent)
        self._waiting = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.EXEMPT:
            await self.app(scope, receive, send)
            return
        if self._slots.locked():
            if self._waiting >= self.max_waiting:
                await _overloaded("too many requests waiting")(scope, receive, send)
                return
            self._waiting += 1
            try:
                await asyncio.wait_for(self._slots.acquire(), self.max_wait)
            except TimeoutError:
                await _overloaded("no request slot within the wait limit")(scope, receive, send)
                return
            finally:
                self._waiting -= 1
        else:
            await self._slots.acquire()
        try:
            await self.app(scope, receive, send)
        finally:
            self._slots.release()


def _overloaded(reason: str) -> JSONResponse:
    OVERLOAD_REJECTIONS.inc()
    return JSONResponse(
        {"error": f"overloaded: {reason}; retry later"},
        status_code=503,
        headers={"Retry-After": "1"},
    )


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"error": f"request body larger than {limit} bytes"}, status_code=413)


def _invalid_message(request: Request) -> str:
    """The 422's headline; names the usual cause of a puzzling one: ``curl -d`` without
    ``-H 'Content-Type: application/json'`` sends a form, and the JSON body is not read."""
    content_type = request.headers.get("content-type", "")
    if request.method == "POST" and not content_type.startswith("application/json"):
        return (
            "invalid request: send the body as JSON with Content-Type: application/json "
            f"(got {content_type or 'none'})"
        )
    return "invalid request"


def _message(error: dict[str, Any]) -> str:
    """A validation error's message; for a body that is no valid JSON, also why (FastAPI
    keeps that in ``ctx``, e.g. a duplicate key refused by services.common.strict_json)."""
    message = str(error.get("msg", ""))
    reason = (error.get("ctx") or {}).get("error")
    if error.get("type") == "json_invalid" and reason:
        return f"{message}: {reason}"
    return message


def error_body(message: str, details: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": message}
    if details is not None:
        body["detail"] = details
    return body


def install_common(
    app: FastAPI, *, service: str, settings: Settings, fast_lane: LaneHandler | None = None
) -> None:
    """Add CORS, metrics, body and concurrency limits, JSON errors and GET /metrics; with
    ``fast_lane``, its requests are answered in front of all of it (services.common.fast_lane).
    """
    requests = RequestMetrics(service)
    slots = asyncio.Semaphore(settings.max_concurrent_requests)
    origins = settings.cors_origin_list
    # The admin token header only for origins named one by one: a page of any site (the
    # default "*") may send feedback and read recommendations, never administer.
    allowed_headers = ["content-type", "accept", "accept-language", "content-language"]
    if "*" not in origins:
        allowed_headers.append("x-admin-token")
    app.add_middleware(
        CORS,
        allow_origins=origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=allowed_headers,
    )
    if settings.admin_token is None and service == "api":
        log.warning(
            "RECSYS_ADMIN_TOKEN is not set: /cleanup and /add_items are open to anyone who "
            "reaches this port (fine on a laptop; set a token anywhere else)"
        )
    app.add_middleware(BodySizeLimit)
    # Outside the body limit and CORS, inside metrics: refusals are still counted.
    app.add_middleware(
        ConcurrencyLimit,
        max_concurrent=settings.max_concurrent_requests,
        max_waiting=settings.max_waiting_requests,
        max_wait=settings.max_wait_seconds,
        slots=slots,
    )
    app.add_middleware(MetricsMiddleware, metrics=requests)
    if fast_lane is not None:
        build_stack = app.build_middleware_stack

        def build_with_lane() -> ASGIApp:
            return FastLane(
                build_stack(), fast_lane, metrics=requests, slots=slots, body_limit=MAX_BODY_BYTES
            )

        # Starlette builds the stack on the first request; the lane goes around all of it.
        app.build_middleware_stack = build_with_lane  # type: ignore[method-assign]

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": list(e.get("loc", ())), "msg": _message(e), "type": e.get("type")}
            for e in exc.errors()
        ]
        return JSONResponse(error_body(_invalid_message(request), details), status_code=422)

    @app.exception_handler(RedisError)
    async def _redis_down(_: Request, exc: RedisError) -> JSONResponse:
        # Any route that meets a hung or lost Redis: a 503 naming it, as the routes that
        # catch it themselves answer (a 500 would say the request was wrong or a bug).
        return JSONResponse(error_body(f"redis: {exc}"), status_code=503)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # InvalidInput (services.common.openapi) carries the refused inputs as well.
        details = getattr(exc, "errors", None)
        return JSONResponse(
            error_body(str(exc.detail), details), status_code=exc.status_code, headers=exc.headers
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
