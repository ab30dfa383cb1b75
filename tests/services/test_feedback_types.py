"""Feedback types as configuration, on both backends: a new action is a setting."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from redis import Redis

from services.api.main import create_app as create_api
from services.collector.main import create_app as create_collector
from services.common.keys import Keys
from services.common.settings import Settings
from services.core.feedback import FeedbackType, Role
from services.trainer.dataset import InteractionStore, from_events
from services.trainer.feedback_state import FeedbackState
from tests.conftest import queued_messages
from tests.factories import catalogue, event

pytestmark = pytest.mark.backends("real", "embedded")

SHOP = {
    "like": FeedbackType(role=Role.POSITIVE),
    "purchase": FeedbackType(role=Role.POSITIVE, weight=3.0),
    "dislike": FeedbackType(role=Role.NEGATIVE),
    "view": FeedbackType(role=Role.WATCHED, weight=0.2),
    "hide": FeedbackType(role=Role.EXCLUDED),
}


@pytest.fixture
def shop(settings: Settings) -> Settings:
    return settings.model_copy(update={"feedback_types": SHOP})


def test_the_collector_accepts_the_configured_actions_only(
    settings: Settings, shop: Settings
) -> None:
    body = {"user_id": "u", "item_ids": ["a", "b"], "actions": ["purchase", "view"]}
    with TestClient(create_collector(settings)) as default:
        refused = default.post("/interact", json=body)
        assert refused.status_code == 422
        assert "purchase" in refused.json()["error"] and "like" in refused.json()["error"]
        schema = default.get("/openapi.json").json()
        actions = schema["components"]["schemas"]["InteractEvent"]["properties"]["actions"]
        assert actions["items"]["enum"] == ["dislike", "like"]
    assert queued_messages(settings) == []
    with TestClient(create_collector(shop)) as configured:
        assert configured.post("/interact", json=body).status_code == 200
    [message] = queued_messages(shop)
    assert json.loads(message.body)["actions"] == ["purchase", "view"]


def test_roles_decide_counts_co_likes_and_exclusions(shop: Settings, redis_client: Redis) -> None:
    keys = Keys(shop.key_prefix)
    state = FeedbackState(redis_client, keys, SHOP)
    state.apply([event("ann", ["a", "b", "c", "d"], ["like", "purchase", "view", "hide"])])
    likes = {k.decode(): int(v) for k, v in redis_client.hgetall(keys.item_likes).items()}
    watched = {k.decode(): int(v) for k, v in redis_client.hgetall(keys.item_dislikes).items()}
    assert likes == {"a": 1, "b": 1} and watched == {"c": 1}
    assert {m.decode() for m in redis_client.zrange(keys.colikes("a"), 0, -1)} == {"b"}
    items, _ = catalogue(12)
    with TestClient(create_api(shop)) as api:
        api.post("/add_items", json={"item_ids": [*items, "a", "b", "c", "d"]})
        shown = api.get("/recs/ann?k=20").json()["item_ids"]
    assert sorted(shown) == sorted(items)  # nothing she rated, whatever its role


def test_training_values_follow_the_weights() -> None:
    values = {"like": 1.0, "purchase": 3.0, "dislike": -1.0, "view": 0.2}
    events = [
        event("ann", ["a", "b", "c", "d", "e"], ["like", "purchase", "dislike", "view", "hide"])
    ]
    data = from_events(events, values=values)
    assert dict(zip((data.item_ids[i] for i in data.items), data.values.tolist(), strict=True)) == {
        "a": 1.0,
        "b": 3.0,
        "c": -1.0,
        "d": pytest.approx(0.2),
    }
    store = InteractionStore(values=values)
    store.add(events)
    assert len(store) == 4
