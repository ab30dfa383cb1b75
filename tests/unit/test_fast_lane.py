"""The FastLane in isolation: what it answers, what it leaves to the stack, what it counts."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import REGISTRY
from starlette.types import Message, Receive, Scope, Send

from services.common.fast_lane import GONE, Answer, Decline, FastLane
from services.common.metrics import RequestMetrics

ROUTE = SimpleNamespace(path_format="/hot/{id}")
SERVICE = "lane-test"


class Handler:
    method = "GET"
    route = ROUTE

    def __init__(self, outcome: object) -> None:
        self.outcome = outcome
        self.calls = 0

    def takes(self, path: str) -> bool:
        return path.startswith("/hot/")

    async def answer(self, scope: Scope, receive: Receive) -> Answer | Decline | object:
        self.calls += 1
        if isinstance(self.outcome, Exception):
            raise self.outcome
        if self.outcome == "decline":
            return Decline(receive)
        return self.outcome


class Stack:
    """Stands for the middleware stack: records the requests it got."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def count(status: int) -> float:
    labels = {"service": SERVICE, "route": "/hot/{id}", "method": "GET", "status": str(status)}
    return REGISTRY.get_sample_value("recsys_http_requests_total", labels) or 0.0


def run(
    handler: Handler,
    *,
    path: str = "/hot/1",
    method: str = "GET",
    headers: list[tuple[bytes, bytes]] | None = None,
    free_slots: int = 2,
) -> tuple[Stack, list[Message], dict[str, Any], asyncio.Semaphore]:
    stack = Stack()
    slots = asyncio.Semaphore(2)
    for _ in range(2 - free_slots):
        slots._value -= 1  # taken by requests in flight elsewhere
    lane = FastLane(stack, handler, metrics=RequestMetrics(SERVICE), slots=slots, body_limit=100)
    scope: dict[str, Any] = {"type": "http", "path": path, "method": method}
    scope["headers"] = headers or []
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(lane(scope, receive, send))
    return stack, sent, scope, slots


def test_an_answer_is_sent_with_the_vary_header_and_counted() -> None:
    before = count(201)
    stack, sent, scope, slots = run(Handler(Answer(201, b'{"a":1}')))
    assert stack.paths == []
    start, body = sent
    assert start["status"] == 201
    assert start["headers"] == [
        (b"content-length", b"7"),
        (b"content-type", b"application/json"),
        (b"vary", b"Origin"),
    ]
    assert body["body"] == b'{"a":1}'
    assert scope["route"] is ROUTE
    assert count(201) == before + 1
    assert slots._value == 2  # the slot is given back


def test_a_declined_request_goes_to_the_stack_and_the_lane_counts_nothing() -> None:
    before = count(299)
    stack, sent, scope, slots = run(Handler("decline"))
    assert stack.paths == ["/hot/1"]
    assert sent[0]["status"] == 299
    assert "route" not in scope
    assert count(299) == before  # the stack's own metrics count it
    assert slots._value == 2


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"path": "/cold/1"}, "another path"),
        ({"method": "POST"}, "another method"),
        ({"headers": [(b"origin", b"https://a.example")]}, "CORS has work to do"),
        ({"headers": [(b"content-length", b"101")]}, "a body over the limit: a 413"),
        ({"headers": [(b"content-length", b"x")]}, "a length to refuse"),
        ({"headers": [(b"transfer-encoding", b"chunked")]}, "a body to count"),
        ({"free_slots": 0}, "no free slot: queued or refused by the stack"),
    ],
)
def test_requests_the_lane_must_not_take_reach_the_handler_never(
    kwargs: dict[str, Any], why: str
) -> None:
    handler = Handler(Answer(200, b"{}"))
    stack, _, _, _ = run(handler, **kwargs)
    assert handler.calls == 0, why
    assert len(stack.paths) == 1, why


def test_a_body_within_the_limit_is_taken() -> None:
    handler = Handler(Answer(200, b"{}"))
    stack, _, _, _ = run(handler, headers=[(b"content-length", b"100")])
    assert handler.calls == 1 and stack.paths == []


def test_a_client_gone_gets_no_answer_and_counts_as_499() -> None:
    before = count(499)
    stack, sent, _, slots = run(Handler(GONE))
    assert sent == [] and stack.paths == []
    assert count(499) == before + 1
    assert slots._value == 2


def test_a_failing_handler_counts_a_500_gives_the_slot_back_and_raises() -> None:
    before = count(500)
    with pytest.raises(RuntimeError):
        run(Handler(RuntimeError("bug")))
    assert count(500) == before + 1
