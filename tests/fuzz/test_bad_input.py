"""Hostile bodies and ids against both apps: always a 4xx JSON error, never a 5xx or a write."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from redis import Redis

from services.api.main import create_app as create_api
from services.collector.main import create_app as create_collector
from services.common.http import MAX_BODY_BYTES
from services.common.keys import Keys
from services.common.settings import Settings
from tests.brokers import queued_messages

APPS = {"collector": (create_collector, "/interact"), "api": (create_api, "/add_items")}


@pytest.fixture(params=sorted(APPS))
def target(request: pytest.FixtureRequest, settings: Settings) -> Iterator[tuple[TestClient, str]]:
    factory, path = APPS[request.param]
    app: FastAPI = factory(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, path


def assert_json_4xx(response: Any, *statuses: int) -> None:
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    assert isinstance(response.json()["error"], str)


def nothing_stored(settings: Settings, redis: Redis) -> None:
    assert queued_messages(settings) == []
    assert redis.hlen(Keys(settings.key_prefix).catalogue) == 0


HOSTILE = {
    "deep nesting": b"[" * 200_000 + b"]" * 200_000,
    "deep object": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "invalid utf-8": b'{"user_id": "\xff\xfe", "item_ids": ["a"], "actions": ["like"]}',
    "lone surrogate": b'{"user_id": "\\ud800", "item_ids": ["\\udfff"], "actions": ["like"]}',
    "nul in id": b'{"user_id": "a\\u0000b", "item_ids": ["a\\u0000"], "actions": ["like"]}',
    "newline in id": b'{"user_id": "a\\nb", "item_ids": ["x\\ny"], "actions": ["like"]}',
    "huge number": b'{"user_id": "u", "item_ids": ["a"], "actions": ["like"], "timestamp": 1'
    + b"0" * 5000
    + b"}",
    "huge integer": b'{"user_id": "u", "item_ids": ["a"], "actions": ["like"], "timestamp": 1'
    + b"0" * 400
    + b"}",
    "NaN": b'{"user_id": "u", "item_ids": ["a"], "actions": ["like"], "timestamp": NaN}',
    "not json": b"user_id=u&item_ids=a",
    "empty": b"",
    "array": b"[]",
    "string ids": b'{"user_id": "u", "item_ids": "abc", "actions": "like"}',
}


@pytest.mark.parametrize("body", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_bodies_are_4xx_json_and_store_nothing(
    target: tuple[TestClient, str], body: bytes, settings: Settings, redis_client: Redis
) -> None:
    client, path = target
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert_json_4xx(response, 400, 413, 422)
    nothing_stored(settings, redis_client)


def test_body_over_the_limit_is_413_with_or_without_content_length(
    target: tuple[TestClient, str], settings: Settings, redis_client: Redis
) -> None:
    client, path = target
    big = json.dumps({"item_ids": ["x" * 200] * (MAX_BODY_BYTES // 200)}).encode()
    assert_json_4xx(client.post(path, content=big), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    assert_json_4xx(client.post(path, content=chunks()), 413)
    assert_json_4xx(client.post(path, content=b"{}", headers={"content-length": "abc"}), 400, 413)
    nothing_stored(settings, redis_client)


# "a/b": regression, /interact accepted it but /recs/a%2Fb answered 404 (no such route).
# (No literal "%2F" in an id here: Starlette's TestClient decodes the path twice.)
UNICODE_IDS = [
    "Ünïcødé-ユーザー",
    "emoji-😀-👩‍👩‍👧",
    "rtl-שלום",
    "zero​width",
    "spaces in id",
    "a/b",
    "../a",
    "50%",
]


@pytest.mark.parametrize("user_id", UNICODE_IDS)
def test_unicode_ids_round_trip(settings: Settings, user_id: str) -> None:
    """Printable unicode ids are accepted and stored verbatim; /recs answers for them."""
    with TestClient(create_collector(settings)) as collector:
        event = {"user_id": user_id, "item_ids": [user_id], "actions": ["like"]}
        assert collector.post("/interact", json=event).status_code == 200
    (message,) = queued_messages(settings)
    assert json.loads(message.body)["user_id"] == user_id
    with TestClient(create_api(settings)) as api:
        assert api.post("/add_items", json={"item_ids": [user_id, "other"]}).status_code == 200
        response = api.get("/recs/" + user_id.replace("%", "%25").replace("/", "%2F"))
        assert response.status_code == 200, response.text
        assert set(response.json()["item_ids"]) <= {user_id, "other"}


@pytest.mark.parametrize(
    "user_id", ["a%00b", "tab%09", "del%7F", "%0Anewline", "new%0Aline", "%20", "%20%09%20"]
)
def test_control_characters_and_blank_recs_user_ids_are_422(
    settings: Settings, user_id: str
) -> None:
    with TestClient(create_api(settings)) as api:
        # A newline used to miss the route altogether (a 404 with no reason given).
        for query in ("", "?explain=true"):  # the lean path and the route
            response = api.get(f"/recs/{user_id}{query}")
            assert_json_4xx(response, 422)
            assert response.json()["detail"][0]["loc"] == ["path", "user_id"], response.text


def test_openapi_operation_ids_are_unique(settings: Settings) -> None:
    """Regression: GET and POST /cleanup shared one operationId (found by the fuzzer)."""
    for factory in (create_api, create_collector):
        with TestClient(factory(settings)) as client:
            schema = client.get("/openapi.json").json()
        ids = [op["operationId"] for path in schema["paths"].values() for op in path.values()]
        assert len(ids) == len(set(ids)), ids
