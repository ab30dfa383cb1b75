"""The collector on both brokers: confirmed publish, bad input, broker down."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi.testclient import TestClient

from services.collector.main import create_app
from services.common.settings import Settings
from tests.conftest import broker_down_url, queued_messages

pytestmark = pytest.mark.backends("real", "embedded")


@pytest.fixture
def client(settings: Settings) -> TestClient:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_interact_publishes_a_persistent_message_with_an_id(
    client: TestClient, settings: Settings
) -> None:
    event = {
        "user_id": "u1",
        "item_ids": ["i1", "i2"],
        "actions": ["like", "dislike"],
        "timestamp": 1726148676.3,
    }
    response = client.post("/interact", json=event)
    assert response.status_code == 200, response.text
    [message] = queued_messages(settings)
    assert json.loads(message.body) == event
    assert message.persistent
    assert message.message_id == response.json()["event_id"]


def test_missing_timestamp_gets_server_time(client: TestClient, settings: Settings) -> None:
    response = client.post(
        "/interact", json={"user_id": "u", "item_ids": ["i"], "actions": ["like"]}
    )
    assert response.status_code == 200
    [message] = queued_messages(settings)
    assert json.loads(message.body)["timestamp"] > 1.7e9


def test_integer_timestamp_is_accepted(client: TestClient, settings: Settings) -> None:
    body = {"user_id": "u", "item_ids": ["i"], "actions": ["like"], "timestamp": 1726148676}
    assert client.post("/interact", json=body).status_code == 200
    assert json.loads(queued_messages(settings)[0].body)["timestamp"] == 1726148676.0


GOOD = {"user_id": "u", "item_ids": ["a", "b"], "actions": ["like", "dislike"]}
BAD_BODIES = {
    "lengths differ": {**GOOD, "actions": ["like"]},
    "unknown action": {**GOOD, "actions": ["like", "love"]},
    "missing user": {"item_ids": ["a"], "actions": ["like"]},
    "missing items": {"user_id": "u", "actions": ["like"]},
    "missing actions": {"user_id": "u", "item_ids": ["a"]},
    "user not a string": {**GOOD, "user_id": 42},
    "items not a list": {**GOOD, "item_ids": "a"},
    "item not a string": {**GOOD, "item_ids": [1, "b"]},
    "empty lists": {"user_id": "u", "item_ids": [], "actions": []},
    "oversized lists": {"user_id": "u", "item_ids": ["a"] * 1001, "actions": ["like"] * 1001},
    "huge user id": {**GOOD, "user_id": "u" * 257},
    "huge item id": {**GOOD, "item_ids": ["a" * 257, "b"]},
    "empty id": {**GOOD, "user_id": ""},
    "blank user id": {**GOOD, "user_id": "  \t "},
    "liked and disliked": {"user_id": "u", "item_ids": ["a", "a"], "actions": ["like", "dislike"]},
    "control char": {**GOOD, "user_id": "u\x00"},
    "timestamp string": {**GOOD, "timestamp": "yesterday"},
    "timestamp negative": {**GOOD, "timestamp": -5},
    "timestamp bool": {**GOOD, "timestamp": True},
    "extra field": {**GOOD, "rating": 5},
    "not an object": ["u", "a", "like"],
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_input_is_a_4xx_json_error_and_nothing_is_queued(
    client: TestClient, settings: Settings, body: object
) -> None:
    response = client.post("/interact", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"] and response.json()["detail"], response.text
    assert queued_messages(settings) == []


def test_a_body_without_the_json_content_type_says_so(
    client: TestClient, settings: Settings
) -> None:
    """curl -d without -H 'Content-Type: application/json' sends a form."""
    body = b'{"user_id": "u", "item_ids": ["a"], "actions": ["like"]}'
    form = "application/x-www-form-urlencoded"
    response = client.post("/interact", content=body, headers={"content-type": form})
    assert response.status_code == 422
    assert "Content-Type: application/json" in response.json()["error"], response.text
    assert form in response.json()["error"]
    assert queued_messages(settings) == []


def test_the_same_item_twice_with_one_meaning_is_accepted(
    client: TestClient, settings: Settings
) -> None:
    """Only a contradiction is refused: a repeated like, or a like after a view, is not."""
    event = {"user_id": "u", "item_ids": ["a", "a", "b"], "actions": ["like", "like", "dislike"]}
    assert client.post("/interact", json=event).status_code == 200
    assert len(queued_messages(settings)) == 1


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"not json", "application/json"),
        (b'{"user_id": ', "application/json"),
        (b"", "application/json"),
    ],
)
def test_non_json_body_is_rejected(
    client: TestClient, settings: Settings, content: bytes, content_type: str
) -> None:
    response = client.post("/interact", content=content, headers={"content-type": content_type})
    assert 400 <= response.status_code < 500
    assert "error" in response.json()
    assert queued_messages(settings) == []


def test_body_over_the_limit_is_413(client: TestClient, settings: Settings) -> None:
    response = client.post(
        "/interact", content=b"x" * (5 * 1024 * 1024), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "error" in response.json()


def test_broker_down_gives_503_and_healthcheck_names_it(settings: Settings) -> None:
    down = settings.model_copy(
        update={"amqp_url": broker_down_url(settings), "publish_timeout": 1.0}
    )
    with TestClient(create_app(down)) as client:
        response = client.post("/interact", json=GOOD)
        assert response.status_code == 503
        assert "error" in response.json()
        health = client.get("/healthcheck")
        assert health.status_code == 503
        assert "broker" in health.json()["down"]


def test_healthcheck_and_metrics(client: TestClient) -> None:
    assert client.get("/healthcheck").json()["status"] == "ok"
    client.post("/interact", json=GOOD)
    metrics = client.get("/metrics").text
    assert (
        'recsys_http_requests_total{method="POST",route="/interact",service="collector",status="200"}'
        in metrics
    )
    assert "recsys_events_published_total" in metrics


def test_cors_preflight_is_answered(client: TestClient) -> None:
    response = client.options(
        "/interact",
        headers={"Origin": "http://example.test", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] in ("*", "http://example.test")


# Bodies where pydantic-core's JSON parser and Python's json differ (BOM, UTF-16, bad UTF-8,
# lone surrogates, NaN, huge numbers, duplicate keys) or that are merely unusual.
EDGE_BODIES = {
    "bom": b'\xef\xbb\xbf{"user_id": "u", "item_ids": ["a"], "actions": ["like"]}',
    "utf-16": '{"user_id": "u", "item_ids": ["a"], "actions": ["like"]}'.encode("utf-16"),
    "bad utf-8": b'{"user_id": "\xff", "item_ids": ["a"], "actions": ["like"]}',
    "lone surrogate": b'{"user_id": "\\ud800", "item_ids": ["a"], "actions": ["like"]}',
    "NaN": b'{"user_id": "u", "item_ids": ["a"], "actions": ["like"], "timestamp": NaN}',
    "1e400": b'{"user_id": "u", "item_ids": ["a"], "actions": ["like"], "timestamp": 1e400}',
    "big int": b'{"user_id": "u", "item_ids": ["a"], "actions": ["like"], "timestamp": 1'
    + b"0" * 40
    + b"}",
    "duplicate key": b'{"user_id": "u", "user_id": 5, "item_ids": ["a"], "actions": ["like"]}',
    "null timestamp": b'{"user_id": "u", "item_ids": ["a"], "actions": ["x"], "timestamp": null}',
    "escaped id": b'{"user_id": "\\u00e9", "item_ids": ["a"], "actions": ["like"]}',
    "trailing garbage": b'{"user_id": "u", "item_ids": ["a"], "actions": ["like"]} x',
    "not json": b"not json",
    "empty": b"",
}


def _answer(response: httpx.Response) -> tuple[int, object]:
    body = response.json()
    if isinstance(body, dict) and "event_id" in body:
        body = {**body, "event_id": "<id>"}
    return response.status_code, body


@pytest.mark.backends("real")
@pytest.mark.parametrize(
    "content",
    [*(json.dumps(b).encode() for b in BAD_BODIES.values()), *EDGE_BODIES.values()],
    ids=[*BAD_BODIES, *EDGE_BODIES],
)
def test_lean_path_answers_exactly_like_the_fastapi_route(
    client: TestClient, settings: Settings, content: bytes
) -> None:
    # "application/json" takes services.collector.fast_path; with a charset parameter the
    # request goes through the FastAPI route. Both must accept and refuse alike.
    lean = client.post("/interact", content=content, headers={"content-type": "application/json"})
    route = client.post(
        "/interact", content=content, headers={"content-type": "application/json; charset=utf-8"}
    )
    assert _answer(lean) == _answer(route)
    published = queued_messages(settings)
    assert len(published) == (2 if lean.status_code == 200 else 0)
    if published:
        first, second = (json.loads(message.body) for message in published)
        assert first.pop("timestamp") > 1.7e9 and second.pop("timestamp") > 1.7e9
        assert first == second
