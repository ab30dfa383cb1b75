"""The live layer on both backends: the bandit's counts and the co-likes, as the ingest
step writes them, and what /recs does with them within a moment."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from redis import Redis

from services.api.main import create_app
from services.common.keys import Keys
from services.common.settings import Settings
from tests.factories import catalogue, event, feedback_state

pytestmark = pytest.mark.backends("real", "embedded")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def counts(redis: Redis, key: str) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in redis.hgetall(key).items()}


def colikes(redis: Redis, keys: Keys, item: str) -> dict[str, float]:
    return {k.decode(): v for k, v in redis.zrange(keys.colikes(item), 0, -1, withscores=True)}


def test_counts_follow_each_users_latest_action_and_ignore_redelivery(
    settings: Settings, redis_client: Redis
) -> None:
    keys = Keys(settings.key_prefix)
    state = feedback_state(settings, redis_client)
    first = event("ann", ["a", "b"], ["like", "like"], ts=100.0)
    state.apply([first])
    state.apply([first])  # redelivered: nothing counts twice
    state.apply([event("bob", ["a"], ["dislike"], ts=100.0)])
    assert counts(redis_client, keys.item_likes) == {"a": 1, "b": 1}
    assert counts(redis_client, keys.item_dislikes) == {"a": 1}
    # Ann changes her mind about b; an older event arriving late changes nothing.
    state.apply([event("ann", ["b"], ["dislike"], ts=200.0)])
    state.apply([event("ann", ["b"], ["like"], ts=150.0)])
    assert counts(redis_client, keys.item_likes) == {"a": 1, "b": 0}
    assert counts(redis_client, keys.item_dislikes) == {"a": 1, "b": 1}


def test_a_like_is_co_liked_with_the_users_earlier_likes(
    settings: Settings, redis_client: Redis
) -> None:
    keys = Keys(settings.key_prefix)
    state = feedback_state(settings, redis_client)
    state.apply([event("ann", ["a", "b"], ["like", "like"])])
    state.apply([event("ann", ["c", "d"], ["like", "dislike"])])
    state.apply([event("bob", ["a", "c"], ["like", "like"])])
    assert colikes(redis_client, keys, "a") == {"b": 1.0, "c": 2.0}
    assert colikes(redis_client, keys, "c") == {"a": 2.0, "b": 1.0}
    assert colikes(redis_client, keys, "d") == {}  # a dislike is no co-like


def test_clearing_ratings_clears_what_was_counted_from_them(
    settings: Settings, redis_client: Redis
) -> None:
    keys = Keys(settings.key_prefix)
    state = feedback_state(settings, redis_client)
    state.apply([event("ann", ["a", "b"], ["like", "dislike"])])
    state.apply([event("ann", ["c"], ["like"])])
    state.clear_ratings()
    left = {k.decode() for k in redis_client.scan_iter(match=f"{settings.key_prefix}*")}
    assert not {keys.item_likes, keys.item_dislikes, keys.colikes("a")} & left
    assert not [key for key in left if ":likes" in key or ":rated" in key]


def test_impressions_count_each_user_once_per_item(
    client: TestClient, settings: Settings, redis_client: Redis
) -> None:
    keys = Keys(settings.key_prefix)
    items, genres = catalogue(30)
    client.post("/add_items", json={"item_ids": items, "genres": genres})
    shown = [i for _ in range(3) for i in client.get("/recs/ann").json()["item_ids"]]
    other = client.get("/recs/bob?k=30").json()["item_ids"]
    impressions = counts(redis_client, keys.item_impressions)
    assert sum(impressions.values()) == len(shown) + len(other) == 60
    assert all(impressions[i] == (i in shown) + (i in other) for i in items)
    assert redis_client.pfcount(keys.users_shown) == 2


def test_a_first_like_brings_what_its_likers_also_liked_within_a_second(
    client: TestClient, settings: Settings, redis_client: Redis
) -> None:
    keys = Keys(settings.key_prefix)
    items, genres = catalogue(300)
    client.post("/add_items", json={"item_ids": items, "genres": genres})
    state = feedback_state(settings, redis_client)
    anchor, partner, rival = items[10], items[20], items[30]
    # 30 users liked anchor and partner together, 30 others only rival: for everyone,
    # partner and rival are equally liked; for a user who likes anchor, partner is the pick.
    for i in range(30):
        state.apply([event(f"fan-{i}", [anchor, partner], ["like", "like"])])
        state.apply([event(f"other-{i}", [rival], ["like"])])
    redis_client.hset(keys.item_impressions, mapping={anchor: 40, partner: 40, rival: 40})
    # A hundred other items shown ten times each for nothing: the population reacts to ~8%
    # of what it is shown, so three items liked by 30 of 40 are its picks, above the
    # untried items too (believed twice the average, services/core/bandit.py).
    redis_client.hset(keys.item_impressions, mapping=dict.fromkeys(items[100:200], 10))
    redis_client.pfadd(keys.users_shown, *[f"fan-{i}" for i in range(60)])
    client.get("/recs/warm-up")
    time.sleep(settings.live_counts_max_age + 0.1)
    client.get("/recs/warm-up-2")  # refreshes the counts behind this request
    time.sleep(0.2)
    state.apply([event("newcomer", [anchor], ["like"])])
    started = time.monotonic()
    first = client.get("/recs/newcomer?k=1").json()["item_ids"]
    assert time.monotonic() - started < 1.0
    assert first == [partner]
    # A user with no likes sees the population's three picks alike.
    cold = client.get("/recs/cold?k=10").json()["item_ids"]
    assert {anchor, partner, rival} <= set(cold)


def test_a_long_history_in_one_event_pairs_a_bounded_number_of_co_likes(
    settings: Settings, redis_client: Redis
) -> None:
    from services.core.ratings import COLIKE_PAIRS_PER_CALL

    keys = Keys(settings.key_prefix)
    items = [f"i{n}" for n in range(300)]
    feedback_state(settings, redis_client).apply([event("ann", items, ["like"] * 300)])
    assert counts(redis_client, keys.item_likes) == dict.fromkeys(items, 1)
    pairs = sum(redis_client.zcard(keys.colikes(item)) for item in items)
    assert 0 < pairs <= 2 * COLIKE_PAIRS_PER_CALL


def test_feedback_on_an_item_not_yet_in_the_catalogue_counts_once_it_is_added(
    client: TestClient, settings: Settings, redis_client: Redis
) -> None:
    """The documented rule (README, "Feedback on items not in the catalogue"): kept, never
    recommended while unknown, and counted as the user's rating once the item is added."""
    items, genres = catalogue(12)
    client.post("/add_items", json={"item_ids": items, "genres": genres})
    feedback_state(settings, redis_client).apply([event("ann", ["later"], ["like"])])
    for _ in range(3):
        assert "later" not in client.get("/recs/bob?k=12").json()["item_ids"]
    client.post("/add_items", json={"item_ids": ["later"], "genres": [["Drama"]]})
    # Ann liked it before it existed: never shown to her; everyone else may get it.
    seen_by_ann = {i for _ in range(4) for i in client.get("/recs/ann?k=13").json()["item_ids"]}
    assert "later" not in seen_by_ann and len(seen_by_ann) == 12
    assert "later" in client.get("/recs/carol?k=13").json()["item_ids"]


def test_a_batch_of_many_users_applies_each_ones_latest_action(
    settings: Settings, redis_client: Redis
) -> None:
    """More users than one script call takes, some with several events in the batch."""
    from services.trainer.feedback_state import USERS_PER_CALL

    keys = Keys(settings.key_prefix)
    users = [f"u {n} é" for n in range(2 * USERS_PER_CALL + 7)]  # spaces, non-ASCII
    batch = [event(user, ["a", "b|c"], ["like", "dislike"], ts=10.0) for user in users]
    batch += [event(user, ["a"], ["dislike"], ts=11.0) for user in users[::2]]
    batch += [event(user, ["a"], ["like"], ts=9.0) for user in users[1::2]]  # late, older
    feedback_state(settings, redis_client).apply(batch)
    for n, user in enumerate(users):
        rated = {k.decode(): v.decode() for k, v in redis_client.hgetall(keys.rated(user)).items()}
        assert rated == {"a": "dislike|11.0" if n % 2 == 0 else "like|10.0", "b|c": "dislike|10.0"}
        assert redis_client.zscore(keys.active_users, user) == (11.0 if n % 2 == 0 else 10.0)
        assert redis_client.get(keys.feedback_seq(user)) == b"1"
    liked = len(users[1::2])
    assert counts(redis_client, keys.item_likes) == {"a": liked}
    assert counts(redis_client, keys.item_dislikes) == {"a": len(users) - liked, "b|c": len(users)}
