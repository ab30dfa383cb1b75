"""The replay simulator against a small in-process stand-in for the api and collector.

The stand-in keeps the public HTTP contract (not the real services: those are exercised by the
service tests); it recommends the liked items' cluster mates so online metrics are non-trivial.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI, HTTPException

from services.evaluation.simulator import check_loopback, run, summary
from services.evaluation.synthetic import SyntheticConfig, generate


def contract_app() -> FastAPI:
    app = FastAPI()
    catalogue: list[str] = []
    rated: dict[str, set[str]] = {}
    shown: dict[str, set[str]] = {}
    calls = {"interact": 0}

    @app.post("/add_items")
    async def add_items(body: dict[str, list[object]]) -> dict[str, int]:
        if len(body.get("genres", [])) != len(body["item_ids"]):
            raise HTTPException(422, "genres must be parallel to item_ids")
        catalogue.extend(str(i) for i in body["item_ids"] if i not in catalogue)
        return {"items": len(catalogue)}

    @app.post("/interact")
    async def interact(body: dict[str, object]) -> dict[str, str]:
        items, actions = body["item_ids"], body["actions"]
        assert isinstance(items, list) and isinstance(actions, list)
        assert len(items) == len(actions) and set(actions) <= {"like", "dislike"}
        rated.setdefault(str(body["user_id"]), set()).update(str(i) for i in items)
        calls["interact"] += 1
        return {"status": "ok"}

    @app.get("/recs/{user_id}")
    async def recs(user_id: str, k: int = 10) -> dict[str, list[str]]:
        done = rated.get(user_id, set()) | shown.setdefault(user_id, set())
        out = [i for i in catalogue if i not in done][:k]
        shown[user_id].update(out)
        return {"item_ids": out}

    app.state.calls = calls
    return app


def test_replay_reports_online_metrics() -> None:
    ratings = generate(SyntheticConfig(users=30, items=60, clusters=3, mean_ratings=15, seed=2))
    app = contract_app()
    transport = httpx.ASGITransport(app=app)
    stats = asyncio.run(
        run(
            ratings,
            api_url="http://127.0.0.1:5001",
            collector_url="http://127.0.0.1:5000",
            users=12,
            concurrency=4,
            rounds=3,
            batch=25,
            short_pause=0.0,
            long_pause=0.01,
            max_seconds=30,
            transport=transport,
        )
    )
    figures = summary(stats, ratings, 10, 1.0)
    assert not stats.errors
    assert figures["responses"] == 36
    assert figures["short lists"] == 0 and figures["repeated items"] == 0
    # Reactions went out for held-out items that appeared in the lists.
    assert stats.likes + stats.dislikes > 0
    assert 0 < figures["online precision@k"] <= 1 and 0 < figures["hit rate"] <= 1
    assert 0 < figures["coverage"] <= 1 and figures["recs p95 ms"] >= figures["recs p50 ms"]


def test_errors_are_counted_not_raised() -> None:
    ratings = generate(SyntheticConfig(users=5, items=10, clusters=2, mean_ratings=5, seed=2))
    broken = FastAPI()

    @broken.get("/recs/{user_id}")
    async def recs(user_id: str) -> None:
        raise HTTPException(503, "down")

    stats = asyncio.run(
        run(
            ratings,
            api_url="http://127.0.0.1:5001",
            collector_url="http://127.0.0.1:5000",
            users=2,
            rounds=2,
            short_pause=0.0,
            long_pause=0.0,
            transport=httpx.ASGITransport(app=broken),
        )
    )
    assert stats.errors["GET /recs: HTTP 503"] == 4
    assert stats.errors["POST /add_items: HTTP 404"] == 1


def test_loopback_only() -> None:
    check_loopback("http://127.0.0.1:5001")
    check_loopback("http://localhost:5000")
    check_loopback("http://[::1]:5000")
    with pytest.raises(SystemExit):
        check_loopback("http://example.com")
    with pytest.raises(SystemExit):
        check_loopback("http://10.0.0.1:5001")
