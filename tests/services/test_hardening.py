"""The low findings of issue #15, each refused or counted as it should be, on both backends.

Far-future timestamps, /model while Redis hangs, client disconnects in the request metrics,
duplicate ids in /add_items, repeated JSON keys, the data files' permissions and a flood of
health probes.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from redis import Redis
from starlette.types import Message

from services.api.main import create_app as create_api
from services.collector.main import create_app as create_collector
from services.common.keys import Keys
from services.common.settings import Settings
from tests.brokers import queued_messages
from tests.e2e.processes import Deployment, wait_until

pytestmark = pytest.mark.backends("real", "embedded")

# The collector's two paths: the lean one takes exactly application/json, the route the rest.
CONTENT_TYPES = ["application/json", "application/json; charset=utf-8"]


@pytest.fixture
def collector(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_collector(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_api(settings), raise_server_exceptions=False) as client:
        yield client


def post(client: TestClient, path: str, body: dict[str, Any] | bytes, content_type: str) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, content=content, headers={"content-type": content_type})


def assert_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text[:300])
    body: dict[str, Any] = response.json()
    assert isinstance(body["error"], str)
    return body


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_a_far_future_timestamp_is_refused(
    collector: TestClient, settings: Settings, content_type: str
) -> None:
    """A rating is latest-wins by time: an event from 2100 would pin it for good."""
    event = {"user_id": "u", "item_ids": ["a"], "actions": ["like"]}
    for timestamp in (4102444800, time.time() + 3600):  # 2100; an hour ahead
        refused = post(collector, "/interact", {**event, "timestamp": timestamp}, content_type)
        body = assert_error(refused, 422)
        assert "future" in json.dumps(body["detail"])
    skewed = post(collector, "/interact", {**event, "timestamp": time.time() + 60}, content_type)
    assert skewed.status_code == 200, skewed.text  # a client clock a minute fast is fine
    assert len(queued_messages(settings)) == 1


@pytest.fixture
def hung_redis(settings: Settings) -> Iterator[Settings]:
    """The instance's Redis accepts connections and never answers (a hung server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        port = sock.getsockname()[1]
        yield settings.model_copy(
            update={"redis_url": f"redis://127.0.0.1:{port}/0", "redis_timeout": 0.3}
        )


def test_model_answers_503_while_redis_hangs(hung_redis: Settings) -> None:
    with TestClient(create_api(hung_redis), raise_server_exceptions=False) as client:
        started = time.monotonic()
        response = client.get("/model")
        body = assert_error(response, 503)
        assert body["error"].startswith("redis")
        assert time.monotonic() - started < 3


def test_add_items_counts_each_new_id_once(api: TestClient) -> None:
    first = api.post("/add_items", json={"item_ids": ["a", "a", "b", "a"]})
    assert first.json() == {"status": "ok", "added": 2, "total": 2}
    second = api.post("/add_items", json={"item_ids": ["b", "c", "c", "d"]})
    assert second.json() == {"status": "ok", "added": 2, "total": 4}
    genres = [["Drama"], ["Comedy"], ["Drama"]]
    third = api.post("/add_items", json={"item_ids": ["e", "e", "a"], "genres": genres})
    assert third.json() == {"status": "ok", "added": 1, "total": 5}


REPEATED_KEYS = {
    "plain": b'{"user_id": "u", "item_ids": ["a"], "actions": ["like"], "user_id": "v"}',
    "escaped": b'{"user_id": "u", "item_ids": ["a"], "actions": ["like"], "\\u0075ser_id": "v"}',
    "timestamp": b'{"user_id": "u", "item_ids": ["a"], "actions": ["like"], '
    b'"timestamp": 1, "timestamp": 2}',
}


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
@pytest.mark.parametrize("body", list(REPEATED_KEYS.values()), ids=list(REPEATED_KEYS))
def test_repeated_json_keys_are_refused_by_the_collector(
    collector: TestClient, settings: Settings, body: bytes, content_type: str
) -> None:
    response = post(collector, "/interact", body, content_type)
    detail = assert_error(response, 422)["detail"]
    assert "duplicate key" in detail[0]["msg"], detail
    assert queued_messages(settings) == []
    # A backslash in an id (the fast path hands it to the route) is still accepted.
    event = {"user_id": "back\\slash", "item_ids": ["a"], "actions": ["like"]}
    assert post(collector, "/interact", event, content_type).status_code == 200


def test_repeated_json_keys_are_refused_by_the_api(
    api: TestClient, settings: Settings, redis_client: Redis
) -> None:
    response = post(api, "/add_items", b'{"item_ids": ["a"], "item_ids": ["b"]}', CONTENT_TYPES[0])
    assert "duplicate key 'item_ids'" in assert_error(response, 422)["detail"][0]["msg"]
    nested = b'{"item_ids": ["a"], "genres": [["x"]], "titles": ["t"], "genres": [["y"]]}'
    assert_error(post(api, "/add_items", nested, CONTENT_TYPES[0]), 422)
    assert redis_client.hlen(Keys(settings.key_prefix).catalogue) == 0


def requests_counted(service: str, route: str, status: str) -> float:
    labels = {"service": service, "route": route, "method": "POST", "status": status}
    return REGISTRY.get_sample_value("recsys_http_requests_total", labels) or 0.0


@pytest.mark.parametrize(
    ("factory", "service", "path"),
    [(create_collector, "collector", "/interact"), (create_api, "api", "/add_items")],
)
async def test_a_client_that_leaves_is_counted_as_499_not_500(
    settings: Settings, factory: Any, service: str, path: str
) -> None:
    """The client closes the connection before sending its body."""
    app = factory(settings)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    before = {s: requests_counted(service, path, s) for s in ("499", "500", "400")}
    try:
        await app(scope, receive, send)
    except Exception as error:  # the route's ClientDisconnect, re-raised to the server
        assert type(error).__name__ == "ClientDisconnect"
    assert requests_counted(service, path, "499") == before["499"] + 1
    assert requests_counted(service, path, "500") == before["500"]
    assert requests_counted(service, path, "400") == before["400"]


def test_data_files_are_readable_by_the_service_user_only(
    settings: Settings, tmp_path: Path
) -> None:
    deployment = Deployment(settings, tmp_path)
    deployment.start_all()
    try:
        event = {"user_id": "u", "item_ids": ["a"], "actions": ["like"]}
        httpx.post(f"{deployment.collector}/interact", json=event, timeout=10).raise_for_status()
        wait_until(
            lambda: settings.log_path.exists() and settings.log_path.stat().st_size > 0,
            30,
            deployment.logs,
        )
    finally:
        deployment.stop_all()
    paths = [settings.data_dir, *settings.data_dir.rglob("*")]
    assert settings.log_path in paths
    if settings.amqp_url is None:  # embedded: the queue and Redis's AOF live here too
        assert any(p.name.startswith("queue.db") for p in paths)
        assert any(p.name.startswith("appendonly") for p in paths)
    shared = {
        str(p.relative_to(tmp_path)): oct(stat.S_IMODE(p.lstat().st_mode))
        for p in paths
        if not p.is_socket() and stat.S_IMODE(p.lstat().st_mode) & 0o077
    }
    assert not shared, f"readable by others: {shared}"
    assert os.stat(settings.log_path).st_mode & 0o777 == 0o600


@pytest.mark.parametrize("service", ["api", "collector"])
def test_probes_arriving_together_share_one_health_check(settings: Settings, service: str) -> None:
    """/healthcheck is exempt from the request limits: a flood of it must not become a
    flood of Redis and broker round trips (each probe queued behind the others)."""
    factory = create_api if service == "api" else create_collector
    with TestClient(factory(settings)) as client:
        state = client.app.state  # type: ignore[attr-defined]
        checked = state.store if service == "api" else state.publisher
        name = "ping" if service == "api" else "queue_depth"
        original = getattr(checked, name)
        calls: list[float] = []

        async def slow(*args: Any) -> Any:
            calls.append(time.monotonic())
            await asyncio.sleep(0.5)
            return await original(*args)

        setattr(checked, name, slow)
        with ThreadPoolExecutor(max_workers=40) as pool:
            answers = list(pool.map(lambda _: client.get("/healthcheck"), range(40)))
        assert [a.status_code for a in answers] == [200] * 40
        assert len(calls) <= 4, f"{len(calls)} checks for 40 probes arriving together"

        # Nothing stale: the next probe runs a check of its own and sees the failure.
        async def down(*args: Any) -> Any:
            raise ConnectionError("down")

        setattr(checked, name, down)
        assert client.get("/healthcheck").status_code == 503
