"""Fuzz both apps from their OpenAPI schemas, with the real Redis and RabbitMQ behind them.

A fixed budget of derandomized cases per operation (valid and invalid ones): never a 5xx,
every rejection a 4xx JSON error, nothing stored from a rejected request. /cleanup is left
out: it takes no input, and wiping in the middle would blind the "nothing stored" check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pika
import pytest
import schemathesis
from fastapi import FastAPI
from redis import Redis

from services.api.main import create_app as create_api
from services.collector.main import create_app as create_collector
from services.common.keys import Keys
from services.common.settings import Settings
from tests.fuzz.cases import each_case

EXAMPLES = 60  # per operation and generation mode: a fixed, CI-sized budget
TOKEN = "fuzz-admin-token"


def queue_depth(settings: Settings) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(str(settings.amqp_url)))
    channel = connection.channel()
    channel.queue_declare(settings.queue, durable=True)
    depth = channel.queue_declare(settings.queue, passive=True).method.message_count
    connection.close()
    return int(depth)


def catalogue_state(redis: Redis, keys: Keys) -> tuple[int, bytes | None]:
    return int(redis.hlen(keys.catalogue)), redis.get(keys.catalogue_version)  # type: ignore[arg-type]


def fuzz(
    app: FastAPI,
    *,
    skip: Callable[[str], bool],
    snapshot: Callable[[str], Any],
    accepted: Callable[[str, Any], None],
) -> dict[str, int]:
    """Run every operation's cases; returns how many calls got each status class."""
    seen: dict[str, int] = {}

    def check(case: schemathesis.Case) -> None:
        before = snapshot(case.path)
        response = case.call(headers={"X-Admin-Token": TOKEN})
        status = response.status_code
        label = f"{case.method} {case.path} {status // 100}xx"
        seen[label] = seen.get(label, 0) + 1
        where = f"{case.method} {case.formatted_path} -> {status}: {response.text[:300]}"
        assert status < 500, where
        if status >= 400:
            content_type = response.headers.get("content-type", [""])[0]
            assert content_type.startswith("application/json"), where
            assert isinstance(response.json().get("error"), str), where
            assert snapshot(case.path) == before, f"stored from a rejection: {where}"
        else:
            accepted(case.path, case)

    each_case(app, examples=EXAMPLES, skip=skip, check=check)
    return seen


@pytest.fixture
def fuzz_settings(settings: Settings) -> Iterator[Settings]:
    yield settings.model_copy(update={"admin_token": TOKEN})


def test_fuzz_collector(fuzz_settings: Settings) -> None:
    accepted = 0

    def count(path: str, _: Any) -> None:
        nonlocal accepted
        accepted += path == "/interact"

    seen = fuzz(
        create_collector(fuzz_settings),
        skip=lambda path: False,
        snapshot=lambda path: queue_depth(fuzz_settings) if path == "/interact" else None,
        accepted=count,
    )
    print(seen)
    assert seen.get("POST /interact 4xx", 0) > 20, seen  # invalid events were really tried
    # Few: the schema cannot say that item_ids and actions must have the same length, nor
    # that a timestamp may be at most 300 s ahead of the server's clock (its maximum is
    # the year 5138): 9 of the 120 derandomized cases are valid events.
    assert seen.get("POST /interact 2xx", 0) >= 5, seen
    # Exactly the accepted events reached the queue: nothing from a rejected one.
    assert queue_depth(fuzz_settings) == accepted


def test_fuzz_api(fuzz_settings: Settings, redis_client: Redis) -> None:
    keys = Keys(fuzz_settings.key_prefix)
    accepted_items: set[str] = set()

    def snapshot(path: str) -> object:
        if path == "/add_items":
            return catalogue_state(redis_client, keys)
        if path.startswith("/recs"):
            return sorted(redis_client.scan_iter(match=keys.shown("*"), count=1000))
        return None

    def remember(path: str, case: schemathesis.Case) -> None:
        if path == "/add_items":
            accepted_items.update(case.body["item_ids"])

    seen = fuzz(
        create_api(fuzz_settings),
        skip=lambda path: path == "/cleanup",
        snapshot=snapshot,
        accepted=remember,
    )
    print(seen)
    assert seen.get("POST /add_items 4xx", 0) > 20, seen
    assert seen.get("POST /add_items 2xx", 0) > 20, seen
    assert seen.get("GET /recs/{user_id} 2xx", 0) > 20, seen
    stored = {k.decode() for k in redis_client.hkeys(keys.catalogue)}
    assert stored == accepted_items, "the catalogue holds items no accepted request sent"
