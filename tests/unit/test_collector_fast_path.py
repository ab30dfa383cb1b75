"""The lean POST /interact path in isolation: what it answers itself and what it passes on
(through the FastLane that carries it, services/common/fast_lane.py)."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from services.collector.fast_path import InteractFastPath
from services.common.broker import BrokerUnavailableError
from services.common.fast_lane import FastLane
from services.common.http import MAX_BODY_BYTES
from services.common.metrics import RequestMetrics
from services.common.settings import Settings

EVENT = {"user_id": "u", "item_ids": ["i"], "actions": ["like"], "timestamp": 1726148676.5}


class FakePublisher:
    def __init__(self, error: BrokerUnavailableError | None = None) -> None:
        self.bodies: list[bytes] = []
        self.error = error

    async def publish(self, body: bytes, *, headers: dict[str, str] | None = None) -> str:
        if self.error is not None:
            raise self.error
        self.bodies.append(body)
        return "abc123"


class Inner:
    """Stands for the FastAPI app: records what reached it, including the body."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        self.bodies.append(message.get("body", b""))
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def lane(inner: Inner, route: Any) -> FastLane:
    return FastLane(
        inner,
        InteractFastPath(route=route),
        metrics=RequestMetrics("test"),
        slots=asyncio.Semaphore(4),
        body_limit=MAX_BODY_BYTES,
    )


def call(
    body: bytes,
    *,
    content_type: bytes = b"application/json",
    path: str = "/interact",
    method: str = "POST",
    publisher: FakePublisher | None = None,
    chunks: int = 1,
) -> tuple[Inner, list[Message], dict[str, Any]]:
    inner = Inner()
    route = SimpleNamespace(path="/interact")
    app = lane(inner, route)
    state = SimpleNamespace(publisher=publisher or FakePublisher(), settings=Settings())
    scope: dict[str, Any] = {
        "type": "http",
        "path": path,
        "method": method,
        "headers": [(b"content-type", content_type)],
        "app": SimpleNamespace(state=state),
    }
    size = max(1, -(-len(body) // chunks))
    parts = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    incoming: list[Message] = [
        {"type": "http.request", "body": part, "more_body": n < len(parts) - 1}
        for n, part in enumerate(parts)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    assert scope.get("route") in (None, route)
    return inner, sent, scope


def test_valid_event_is_published_and_answered_without_the_route() -> None:
    publisher = FakePublisher()
    inner, sent, scope = call(json.dumps(EVENT).encode(), publisher=publisher, chunks=3)
    assert inner.bodies == []
    assert [json.loads(body) for body in publisher.bodies] == [EVENT]
    start, body = sent
    assert start["status"] == 200
    assert dict(start["headers"])[b"content-length"] == str(len(body["body"])).encode()
    assert json.loads(body["body"]) == {"status": "ok", "event_id": "abc123"}
    assert scope["route"] is not None  # metrics label it /interact


def test_missing_timestamp_is_stamped() -> None:
    publisher = FakePublisher()
    event = {k: v for k, v in EVENT.items() if k != "timestamp"}
    call(json.dumps(event).encode(), publisher=publisher)
    assert json.loads(publisher.bodies[0])["timestamp"] > 1.7e9


def test_invalid_body_is_replayed_to_the_route() -> None:
    body = b'{"user_id": 5}'
    publisher = FakePublisher()
    inner, sent, _ = call(body, publisher=publisher, chunks=2)
    assert inner.bodies == [body]
    assert publisher.bodies == []
    assert sent[0]["status"] == 299


def test_other_requests_pass_through_untouched() -> None:
    body = json.dumps(EVENT).encode()
    for kwargs in (
        {"content_type": b"application/json; charset=utf-8"},
        {"content_type": b"text/plain"},
        {"path": "/healthcheck"},
        {"method": "PUT"},
    ):
        inner, _, scope = call(body, **kwargs)  # type: ignore[arg-type]
        assert inner.bodies == [body]
        assert "route" not in scope


def test_broker_refusal_is_a_503_json_error() -> None:
    publisher = FakePublisher(BrokerUnavailableError("broker did not confirm"))
    _, sent, _ = call(json.dumps(EVENT).encode(), publisher=publisher)
    assert sent[0]["status"] == 503
    assert json.loads(sent[1]["body"]) == {"error": "broker did not confirm"}


def test_client_gone_before_the_body_ends_gets_no_answer() -> None:
    inner = Inner()
    app = lane(inner, SimpleNamespace(path="/interact"))
    scope = {
        "type": "http",
        "path": "/interact",
        "method": "POST",
        "headers": [(b"content-type", b"application/json")],
    }
    sent: list[Message] = []
    messages: list[Message] = [
        {"type": "http.request", "body": b"{", "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    assert sent == [] and inner.bodies == []


def test_an_unknown_action_goes_to_the_route_and_nothing_is_published() -> None:
    publisher = FakePublisher()
    body = b'{"user_id": "u", "item_ids": ["a"], "actions": ["purchase"]}'
    inner, sent, _ = call(body, publisher=publisher)
    assert inner.bodies == [body]  # the route answers the 422 with the documented body
    assert publisher.bodies == []
    assert sent[0]["status"] == 299
