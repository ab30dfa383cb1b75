"""Slow or dead dependencies and floods: every request gets an answer in bounded time."""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from services.common.http import ConcurrencyLimit
from services.common.settings import Settings
from tests.e2e.processes import Deployment, wait_until
from tests.reliability.servers import PrivateRedis


async def test_concurrency_limit_refuses_overflow_quickly() -> None:
    """2 running, 1 waiting; the rest get 503 at once; health and metrics always pass."""
    release = asyncio.Event()

    async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/work":
            await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app = ConcurrencyLimit(slow_app, max_concurrent=2, max_waiting=1, max_wait=5)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        running = [asyncio.create_task(client.get("/work")) for _ in range(3)]
        await asyncio.sleep(0.1)  # two hold the slots, one waits
        started = time.monotonic()
        refused = await asyncio.gather(*(client.get("/work") for _ in range(5)))
        assert time.monotonic() - started < 0.5, "overflow must be refused at once"
        assert [r.status_code for r in refused] == [503] * 5
        assert refused[0].headers["Retry-After"] == "1"
        assert "overloaded" in refused[0].json()["error"]
        assert (await client.get("/healthcheck")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200
        release.set()
        assert [r.status_code for r in await asyncio.gather(*running)] == [200, 200, 200]


async def test_concurrency_limit_waiter_gives_up_after_max_wait() -> None:
    release = asyncio.Event()

    async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app = ConcurrencyLimit(slow_app, max_concurrent=1, max_waiting=10, max_wait=0.3)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        holder = asyncio.create_task(client.get("/x"))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        waited = await client.get("/x")
        assert waited.status_code == 503
        assert 0.25 < time.monotonic() - started < 1.5
        release.set()
        assert (await holder).status_code == 200


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A port that accepts TCP connections (kernel backlog) but never answers a byte."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield int(sock.getsockname()[1])


@pytest.mark.e2e
def test_hung_redis_and_flood_get_bounded_503s(settings: Settings, tmp_path: Path) -> None:
    """Redis frozen (SIGSTOP) plus 120 concurrent /recs: quick 503s, the api survives."""
    redis_server = PrivateRedis(tmp_path / "redis")
    redis_server.start()
    deployment = Deployment(
        settings.model_copy(update={"redis_url": redis_server.url}),
        tmp_path,
        extra_env={
            "RECSYS_REDIS_TIMEOUT": "1",
            "RECSYS_MAX_CONCURRENT_REQUESTS": "8",
            "RECSYS_MAX_WAITING_REQUESTS": "8",
            "RECSYS_MAX_WAIT_SECONDS": "0.5",
        },
    )
    try:
        deployment.start("api")
        deployment.start("collector")
        deployment.wait_healthy()
        httpx.post(f"{deployment.api}/add_items", json={"item_ids": ["a", "b"]}).raise_for_status()
        redis_server.pause()

        def one(user: int) -> tuple[int, float, str]:
            started = time.monotonic()
            response = httpx.get(f"{deployment.api}/recs/u{user}", timeout=30)
            return response.status_code, time.monotonic() - started, response.json()["error"]

        with ThreadPoolExecutor(max_workers=120) as pool:
            results = list(pool.map(one, range(120)))
        statuses = Counter(status for status, _, _ in results)
        slowest = max(seconds for _, seconds, _ in results)
        assert statuses == {503: 120}, statuses
        # Socket timeout 1 s (+ reconnect attempt) bounds a request; nobody waits for Redis.
        assert slowest < 6, f"a request took {slowest:.1f}s"
        assert any("overloaded" in error for _, _, error in results), "the limit never engaged"
        assert any("redis" in error for _, _, error in results)

        started = time.monotonic()
        health = httpx.get(f"{deployment.api}/healthcheck", timeout=30)
        assert health.status_code == 503 and "redis" in health.json()["down"]
        assert time.monotonic() - started < 6

        redis_server.resume()
        recovered = httpx.get(f"{deployment.api}/recs/u1", timeout=10)
        assert recovered.status_code == 200 and set(recovered.json()["item_ids"]) == {"a", "b"}
    finally:
        redis_server.resume()
        deployment.stop_all()
        redis_server.stop()


@pytest.mark.e2e
def test_hung_broker_gives_503_within_the_publish_timeout(
    settings: Settings, tmp_path: Path, black_hole: int
) -> None:
    """A broker that accepts TCP but never speaks AMQP: /interact and health still answer."""
    deployment = Deployment(
        settings.model_copy(update={"amqp_url": f"amqp://guest:guest@127.0.0.1:{black_hole}/"}),
        tmp_path,
        extra_env={"RECSYS_PUBLISH_TIMEOUT": "1.5"},
    )
    try:
        deployment.start("collector")
        deadline = time.monotonic() + 30
        while True:  # up, but unhealthy: the broker never answers
            try:
                health = httpx.get(f"{deployment.collector}/healthcheck", timeout=10)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, deployment.logs()
                time.sleep(0.2)
        assert health.status_code == 503 and "broker" in health.json()["down"]
        # The probe port's check has a broker connection of its own: it sees the same.
        probes = f"http://127.0.0.1:{deployment.collector_health_port}/healthcheck"
        wait_until(lambda: httpx.get(probes, timeout=10).status_code == 503, 10, "no 503")
        assert "broker" in httpx.get(probes, timeout=10).json()["down"]
        event = {"user_id": "u", "item_ids": ["a"], "actions": ["like"]}
        for _ in range(3):
            started = time.monotonic()
            response = httpx.post(f"{deployment.collector}/interact", json=event, timeout=30)
            assert response.status_code == 503, response.text
            assert time.monotonic() - started < 4
    finally:
        deployment.stop_all()
