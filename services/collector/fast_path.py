"""POST /interact without FastAPI's per-request machinery: the hot path of ingestion.

Profiled under wrk (docs/benchmarks.md, section 2), routing, dependency solving, exit
stacks, the JSON round trip through Python objects and response rendering took about half
of the collector's CPU per event. This FastLane handler (services/common/fast_lane.py)
answers the common case itself: a body sent as ``application/json`` that validates goes
from pydantic-core straight to the broker.

Anything else - other paths or methods, other content types, a body that does not
validate - is passed on to the FastAPI app with the body replayed, so the error answers
(422/400 JSON bodies) are produced by the same code as before, byte for byte, and the set
of accepted events stays the route's (pydantic-core's JSON parser refuses a few bodies
Python's json accepts, e.g. a UTF-8 BOM; those take the route).

The lane in front of the middleware of services.common.http does for its answers what that
middleware does (metrics, a request slot, the body limit, CORS's Vary header).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.types import Message, Receive, Scope

from services.collector.accept import EVENT_JSON, RefusedEventError, accept
from services.common.broker import BrokerUnavailableError, Publisher
from services.common.events import InteractEvent
from services.common.fast_lane import GONE, Answer, Decline
from services.common.http import error_body

PATH = "/interact"
_JSON = b"application/json"
_EVENT_KEYS = [f'"{name}"'.encode() for name in InteractEvent.model_fields]


class InteractFastPath:
    """The collector's FastLane handler: valid JSON ``POST /interact`` requests."""

    method = "POST"

    def __init__(self, route: Any) -> None:
        # The FastAPI route of /interact: the metrics label these requests "/interact"
        # exactly as when the router matched them.
        self.route = route

    def takes(self, path: str) -> bool:
        return path == PATH

    async def answer(self, scope: Scope, receive: Receive) -> Answer | Decline | object:
        if not _is_plain_json(scope):
            return Decline(receive)
        body = await _read_body(receive)
        if body is None:  # the client left: no answer
            return GONE
        if _may_repeat_a_key(body):
            # pydantic-core keeps the last of repeated keys; the route refuses them (422).
            return Decline(_replay(body, receive))
        try:
            event = EVENT_JSON.validate_json(body)
        except ValidationError:
            # The route re-parses it and answers with the documented error body.
            return Decline(_replay(body, receive))
        state = scope["app"].state
        publisher: Publisher = state.publisher
        try:
            message_id = await accept(event, publisher, state.settings.feedback_types)
        except RefusedEventError:
            # The route checks again and answers with the documented error body.
            return Decline(_replay(body, receive))
        except BrokerUnavailableError as error:
            return Answer.json(503, error_body(str(error)))
        # Same bytes as the route's JSONResponse({"status": "ok", "event_id": ...}).
        return Answer(200, b'{"status":"ok","event_id":"' + message_id.encode() + b'"}')


def _may_repeat_a_key(body: bytes) -> bool:
    """True unless each of the event's keys occurs at most once, unescaped, in the body.

    The event has no nested objects and forbids other keys, so only its own top-level
    names can repeat in a body that validates; a backslash could spell one differently.
    A few byte searches instead of a second parse on the hot path.
    """
    return b"\\" in body or any(body.count(key) > 1 for key in _EVENT_KEYS)


def _is_plain_json(scope: Scope) -> bool:
    """True for exactly ``Content-Type: application/json`` (variants take the route)."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bool(value == _JSON)
    return False


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None if the client disconnected first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            if not chunks:
                return chunk
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that yields the body already read, then defers to the server's."""
    replayed = False

    async def receive_again() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive_again
