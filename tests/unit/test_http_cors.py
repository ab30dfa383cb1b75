"""services.common.http.CORS answers exactly as Starlette's CORSMiddleware it shortcuts."""

from __future__ import annotations

import asyncio

import pytest
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Message, Receive, Scope, Send

from services.common.http import CORS

OPTIONS = {"allow_methods": ["GET", "POST", "OPTIONS"], "allow_headers": ["*"]}


def response_with(headers: list[tuple[bytes, bytes]]) -> object:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": list(headers)})
        await send({"type": "http.response.body", "body": b"{}"})

    return app


def run(
    middleware: object, request_headers: list[tuple[bytes, bytes]], method: str
) -> list[Message]:
    sent: list[Message] = []
    scope = {"type": "http", "method": method, "path": "/x", "headers": request_headers}

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(middleware(scope, receive, send))  # type: ignore[operator]
    return sent


@pytest.mark.parametrize("origins", [["*"], ["http://a.test"]])
@pytest.mark.parametrize(
    "request_headers",
    [
        [(b"content-type", b"application/json")],
        [(b"origin", b"http://a.test")],
        [(b"origin", b"http://b.test")],
        [(b"origin", b"http://a.test"), (b"access-control-request-method", b"POST")],
    ],
)
@pytest.mark.parametrize(
    "response_headers",
    [[], [(b"content-type", b"application/json")], [(b"vary", b"Accept-Encoding")]],
)
@pytest.mark.parametrize("method", ["POST", "OPTIONS"])
def test_same_answer_as_starlette(
    origins: list[str],
    request_headers: list[tuple[bytes, bytes]],
    response_headers: list[tuple[bytes, bytes]],
    method: str,
) -> None:
    app = response_with(response_headers)
    ours = run(CORS(app, allow_origins=origins, **OPTIONS), request_headers, method)  # type: ignore[arg-type]
    theirs = run(CORSMiddleware(app, allow_origins=origins, **OPTIONS), request_headers, method)  # type: ignore[arg-type]
    assert ours == theirs
