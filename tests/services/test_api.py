"""The api on both backends: contract, /recs rules, cleanup, auth."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from redis import Redis

from services.api.main import create_app
from services.common.settings import Settings
from services.core.prefetcher import prefetch_recent
from tests.conftest import closed_port_url, queued_messages
from tests.factories import catalogue, event, feedback_state, publish, two_taste_events

pytestmark = pytest.mark.backends("real", "embedded")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def add(client: TestClient, items: list[str], genres: list[list[str]] | None = None) -> None:
    body: dict[str, object] = {"item_ids": items}
    if genres is not None:
        body["genres"] = genres
    response = client.post("/add_items", json=body)
    assert response.status_code == 200, response.text


def recs(client: TestClient, user: str, k: int | None = None) -> list[str]:
    url = f"/recs/{user}" + (f"?k={k}" if k else "")
    response = client.get(url)
    assert response.status_code == 200, response.text
    return list(response.json()["item_ids"])


def test_add_items_in_batches_is_idempotent(client: TestClient) -> None:
    items, genres = catalogue(30)
    add(client, items[:20], genres[:20])
    add(client, items[10:], genres[10:])
    response = client.post("/add_items", json={"item_ids": items[:5]})
    assert response.json() == {"status": "ok", "added": 0, "total": 30}
    assert sorted(recs(client, "someone", k=30)) == sorted(items)


def test_recs_default_k_distinct_catalogue_items(client: TestClient) -> None:
    items, genres = catalogue(40)
    add(client, items, genres)
    first = recs(client, "cold")
    assert len(first) == 10 and len(set(first)) == 10 and set(first) <= set(items)
    assert client.get("/recs/cold?k=3").json().keys() == {"item_ids"}


def test_empty_catalogue_gives_an_empty_list(client: TestClient) -> None:
    assert recs(client, "anyone") == []


def test_no_repeats_until_the_catalogue_is_exhausted(client: TestClient) -> None:
    items, genres = catalogue(25)
    add(client, items, genres)
    seen: list[str] = []
    for _ in range(2):
        seen += recs(client, "u", k=10)
    assert len(set(seen)) == 20
    third = recs(client, "u", k=10)
    # Only 5 unseen items remain: all of them come first, then the cycle restarts.
    assert set(items) - set(seen) <= set(third)
    assert len(set(third)) == 10


def test_cold_users_get_rotated_lists(client: TestClient) -> None:
    items, genres = catalogue(200)
    add(client, items, genres)
    lists = {tuple(recs(client, f"cold-{i}")) for i in range(10)}
    assert len(lists) > 5


def test_rated_items_are_never_recommended(
    client: TestClient, settings: Settings, redis_client: Redis
) -> None:
    items, genres = catalogue(20)
    add(client, items, genres)
    rated = items[:15]
    feedback_state(settings, redis_client).apply(
        [event("u", rated[:10], ["like"] * 10), event("u", rated[10:], ["dislike"] * 5)]
    )
    result = recs(client, "u", k=10)
    assert not set(result) & set(rated)
    assert len(result) == 5  # only 5 unrated items exist


def test_known_users_are_served_by_the_model(
    client: TestClient, settings: Settings, redis_client: Redis
) -> None:
    items, genres = catalogue(40)
    add(client, items, genres)
    events = two_taste_events(items)
    feedback_state(settings, redis_client).apply(events)
    model = publish(settings, redis_client, events, "ease")
    response = client.get("/recs/user-0?explain=true&k=5")
    body = response.json()
    assert body["model_version"] == model.version
    assert "model" in body["sources"]
    model_items = [
        i for i, s in zip(body["item_ids"], body["sources"], strict=True) if s == "model"
    ]
    # user-0 likes the first half of the catalogue; the model keeps it there.
    assert all(items.index(i) < 20 for i in model_items)
    info = client.get("/model").json()
    assert info["version"] == model.version and info["model"] == "ease"


def test_cleanup_wipes_state_and_queue(
    client: TestClient, settings: Settings, redis_client: Redis
) -> None:
    items, genres = catalogue(10)
    add(client, items, genres)
    publish(settings, redis_client, two_taste_events(items), "popularity")
    recs(client, "u")
    for method in (client.get, client.post):
        response = method("/cleanup")
        assert response.status_code == 200
    remaining = {
        k.decode().removeprefix(settings.key_prefix)
        for k in redis_client.scan_iter(match=f"{settings.key_prefix}*")
    }
    # The epoch, the catalogue version and the counts' sequence only grow (no cache or
    # cursor keyed by them can collide across a wipe), the counts' reset mark says when
    # they were wiped; the cleanup mark stays until the ingester has cut the log.
    assert remaining == {
        "epoch",
        "catalogue:version",
        "items:counts:seq",
        "items:counts:reset",
        "cleanup:pending",
    }
    assert recs(client, "u") == []
    assert client.get("/model").status_code == 404
    # What stays queued is the control message telling the trainer to drop its log.
    queued = [m.headers for m in queued_messages(settings)]
    assert [h["x-recsys-control"] for h in queued] == ["cleanup"]
    assert (
        queued[0]["x-recsys-cleanup-token"]
        == redis_client.get(f"{settings.key_prefix}cleanup:pending").decode()
    )


def test_admin_token_guards_cleanup_and_add_items(settings: Settings) -> None:
    guarded = settings.model_copy(update={"admin_token": "s3cret"})
    with TestClient(create_app(guarded)) as client:
        body = {"item_ids": ["a"]}
        assert client.post("/add_items", json=body).status_code == 401
        assert (
            client.post("/add_items", json=body, headers={"X-Admin-Token": "nope"}).status_code
            == 401
        )
        assert client.get("/cleanup").status_code == 401
        ok = {"X-Admin-Token": "s3cret"}
        assert client.post("/add_items", json=body, headers=ok).status_code == 200
        assert client.get("/recs/u").json() == {"item_ids": ["a"]}
        assert client.get("/cleanup", headers=ok).status_code == 200


BAD_ITEMS = {
    "missing item_ids": {"genres": [["a"]]},
    "empty": {"item_ids": []},
    "not a list": {"item_ids": "a"},
    "int id": {"item_ids": [1]},
    "genres length": {"item_ids": ["a", "b"], "genres": [["x"]]},
    "genre not list": {"item_ids": ["a"], "genres": ["Drama"]},
    "huge id": {"item_ids": ["a" * 300]},
    "too many": {"item_ids": [f"i{n}" for n in range(10_001)]},
    "extra": {"item_ids": ["a"], "price": 3},
}


@pytest.mark.parametrize("body", BAD_ITEMS.values(), ids=BAD_ITEMS.keys())
def test_bad_add_items_is_4xx_and_stores_nothing(
    client: TestClient, settings: Settings, redis_client: Redis, body: object
) -> None:
    response = client.post("/add_items", json=body)
    assert 400 <= response.status_code < 500
    assert "error" in response.json()
    assert not redis_client.exists(f"{settings.key_prefix}catalogue")


@pytest.mark.parametrize("query", ["k=0", "k=-1", "k=abc", "k=1000000", "explain=maybe"])
def test_bad_recs_query_is_4xx(client: TestClient, query: str) -> None:
    response = client.get(f"/recs/u?{query}")
    assert 400 <= response.status_code < 500
    assert "error" in response.json()


def test_k_over_the_maximum_is_422_naming_k(client: TestClient, settings: Settings) -> None:
    for query in (f"k={settings.max_k + 1}", f"k={settings.max_k + 1}&explain=true"):
        response = client.get(f"/recs/u?{query}")
        assert response.status_code == 422
        body = response.json()
        assert str(settings.max_k) in body["error"] and "RECSYS_MAX_K" in body["error"]
        assert body["detail"][0]["loc"] == ["query", "k"], body
        assert str(settings.max_k) in body["detail"][0]["msg"], body


def test_huge_user_id_is_4xx(client: TestClient) -> None:
    assert client.get("/recs/" + "u" * 300).status_code == 422


def test_redis_down_gives_503_with_a_reason(settings: Settings) -> None:
    down = settings.model_copy(
        update={
            "redis_url": closed_port_url("redis").replace("guest:guest@", ""),
            "redis_timeout": 0.5,
        }
    )
    with TestClient(create_app(down)) as client:
        response = client.get("/recs/u")
        assert response.status_code == 503
        health = client.get("/healthcheck")
        assert health.status_code == 503 and "redis" in health.json()["down"]


def test_metrics_count_recommendation_sources(client: TestClient) -> None:
    items, genres = catalogue(30)
    add(client, items, genres)
    recs(client, "u")
    text = client.get("/metrics").text
    assert 'recsys_recommendations_total{source="popular"}' in text
    assert 'recsys_recommendations_total{source="exploration"}' in text
    assert 'route="/recs/{user_id}"' in text


def test_titles_are_optional_and_served_by_items(client: TestClient) -> None:
    body = {"item_ids": ["a", "b"], "genres": [["Drama"], []], "titles": ["Alpha", "Beta"]}
    response = client.post("/add_items", json=body)
    assert response.json() == {"status": "ok", "added": 2, "total": 2}
    add(client, ["c"])  # the original contract: no titles
    found = client.get("/items?id=c&id=nope&id=a").json()
    assert found == {
        "items": [
            {"item_id": "c", "title": None, "genres": []},
            {"item_id": "a", "title": "Alpha", "genres": ["Drama"]},
        ]
    }
    bad = client.post("/add_items", json={"item_ids": ["x"], "titles": ["one", "two"]})
    assert bad.status_code == 422 and "error" in bad.json()
    assert client.get("/items").status_code == 422


def test_demo_page_is_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "static/demo.js" in page.text
    assert "text/javascript" in client.get("/static/demo.js").headers["content-type"]
    sample = client.get("/demo/sample-catalogue.json").json()
    assert len(sample["items"]) == 320 and all(i["title"] and i["genres"] for i in sample["items"])
    assert len(sample["feedback"]) == 80
    # The page learns the collector's address from the api (not a hard-wired port 5000).
    config = client.get("/demo/config.json").json()
    assert config == {
        "collector_url": None,
        "collector_port": client.app.state.settings.collector_port,
    }
    assert client.get("/static/..%2Fmain.py").status_code == 404
    assert client.get("/static/nope.js").status_code == 404


def _prefetch_counts(client: TestClient) -> dict[str, float]:
    counts = {"hit": 0.0, "miss": 0.0, "new_user": 0.0}
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("recsys_recs_prefetch_total{"):
            result = line.split('result="')[1].split('"')[0]
            counts[result] = float(line.rsplit(" ", 1)[1])
    return counts


def _upcoming(redis_client: Redis, queued: str) -> list[str]:
    """Item ids of a prefetched list after its header, without their source letter."""
    return [_text(entry)[1:] for entry in redis_client.lrange(queued, 1, -1)]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def test_pages_after_the_first_come_from_the_prefetched_list(
    client: TestClient, settings: Settings, redis_client: Redis
) -> None:
    items, genres = catalogue(200)
    add(client, items, genres)
    before = _prefetch_counts(client)
    pages = [recs(client, "pager") for _ in range(settings.prefetch_pages)]
    after = _prefetch_counts(client)
    assert after["new_user"] - before["new_user"] == 1  # no history: ranked without reading it
    assert after["hit"] - before["hit"] == settings.prefetch_pages - 1
    served = [item for page in pages for item in page]
    assert len(served) == len(set(served)) == 10 * settings.prefetch_pages
    shown = {_text(s) for s in redis_client.smembers(f"{settings.key_prefix}user:pager:shown")}
    assert shown == set(served)
    # The list is used up: the next page is ranked afresh and still repeats nothing.
    assert not set(recs(client, "pager")) & set(served)
    assert _prefetch_counts(client)["miss"] - after["miss"] == 1


def _first_page_then_list(
    client: TestClient, settings: Settings, redis_client: Redis, user: str
) -> tuple[str, list[str]]:
    """A 100-item catalogue, one /recs for ``user``: their list's key and its items."""
    items, genres = catalogue(100)
    add(client, items, genres)
    recs(client, user)
    queued = f"{settings.key_prefix}user:{user}:next"
    return queued, _upcoming(redis_client, queued)


def test_a_rating_empties_the_prefetched_list(
    client: TestClient, settings: Settings, redis_client: Redis
) -> None:
    queued, upcoming = _first_page_then_list(client, settings, redis_client, "fan")
    assert len(upcoming) == 10 * (settings.prefetch_pages - 1)
    feedback_state(settings, redis_client).apply([event("fan", [upcoming[0]], ["dislike"])])
    assert not redis_client.exists(queued)
    assert upcoming[0] not in recs(client, "fan")


def test_prefetched_items_rated_meanwhile_are_skipped(
    client: TestClient, settings: Settings, redis_client: Redis
) -> None:
    # A rating written without the trainer's script (say, by a rebuild) leaves the list
    # in place: the pop itself still refuses rated and already shown items.
    _, upcoming = _first_page_then_list(client, settings, redis_client, "u")
    redis_client.hset(f"{settings.key_prefix}user:u:rated", upcoming[0], "like|1")
    redis_client.sadd(f"{settings.key_prefix}user:u:shown", upcoming[1])
    page = recs(client, "u")
    assert page == upcoming[2:12]


def test_no_list_is_stored_when_a_rating_lands_during_ranking(
    client: TestClient, settings: Settings, redis_client: Redis
) -> None:
    items, genres = catalogue(100)
    add(client, items, genres)
    store = client.app.state.store  # type: ignore[attr-defined]
    view = client.portal.call(store.user_view, "racer")  # type: ignore[union-attr]
    feedback_state(settings, redis_client).apply([event("racer", [items[0]], ["like"])])
    client.portal.call(  # type: ignore[union-attr]
        lambda: store.record_impressions(
            "racer",
            ["p" + items[1], "p" + items[2]],
            1,
            reset=False,
            catalogue_version=view.catalogue_version,
            feedback_seq=view.feedback_seq,
        )
    )
    assert not redis_client.exists(f"{settings.key_prefix}user:racer:next")
    assert redis_client.sismember(f"{settings.key_prefix}user:racer:shown", items[1])


def test_a_list_ranked_without_a_model_is_dropped_once_one_exists(
    client: TestClient, settings: Settings, redis_client: Redis
) -> None:
    items, genres = catalogue(40)
    add(client, items, genres)
    events = two_taste_events(items)
    recs(client, "watcher", k=3)  # no model yet: popular items, prefetched
    assert redis_client.lindex(f"{settings.key_prefix}user:watcher:next", 0).startswith(b"0|")
    feedback_state(settings, redis_client).apply(events)
    publish(settings, redis_client, events, "ease")
    before = _prefetch_counts(client)["miss"]
    assert len(recs(client, "watcher", k=3)) == 3
    assert _prefetch_counts(client)["miss"] == before + 1
    assert redis_client.lindex(f"{settings.key_prefix}user:watcher:next", 0).startswith(b"1|")


def test_prefetch_stores_pages_without_showing_them(
    client: TestClient, settings: Settings, redis_client: Redis
) -> None:
    items, genres = catalogue(100)
    add(client, items, genres)
    recommender = client.app.state.recommender  # type: ignore[attr-defined]
    stored = client.portal.call(recommender.prefetch, "early", 10, 600)  # type: ignore[union-attr]
    assert stored == 10 * settings.prefetch_pages
    assert redis_client.ttl(f"{settings.key_prefix}user:early:next") > settings.prefetch_ttl
    assert not redis_client.exists(f"{settings.key_prefix}user:early:shown")
    upcoming = _upcoming(redis_client, f"{settings.key_prefix}user:early:next")
    before = _prefetch_counts(client)
    assert recs(client, "early") == upcoming[:10]
    assert _prefetch_counts(client)["hit"] == before["hit"] + 1


def test_new_users_are_shown_what_earlier_users_liked(
    client: TestClient, settings: Settings, redis_client: Redis
) -> None:
    items, genres = catalogue(300)
    add(client, items, genres)
    state = feedback_state(settings, redis_client)
    # Earlier users were shown a few items; two of them were liked by most who saw them.
    for i in range(20):
        first = recs(client, f"early-{i}")
        state.apply([event(f"early-{i}", [first[0]], ["dislike"])])
    loved = items[:2]
    for i in range(30):
        state.apply([event(f"fan-{i}", loved, ["like", "like"])])
    redis_client.hset(f"{settings.key_prefix}items:impressions", mapping=dict.fromkeys(loved, 35))
    # Past the api's copy of the counts (RECSYS_LIVE_COUNTS_MAX_AGE).
    _wait_for_counts(client, settings)
    lists = [recs(client, f"newcomer-{i}") for i in range(20)]
    assert all(set(loved) <= set(items_) for items_ in lists)
    # Everything else rotates: tie orders and exploration differ between the rankings.
    assert len({tuple(sorted(set(x) - set(loved))) for x in lists}) >= 5


def test_items_ignored_by_many_users_sink(
    client: TestClient, settings: Settings, redis_client: Redis
) -> None:
    items, genres = catalogue(300)
    add(client, items, genres)
    ignored = items[:50]
    redis_client.hset(
        f"{settings.key_prefix}items:impressions", mapping=dict.fromkeys(ignored, 1000)
    )
    _wait_for_counts(client, settings)
    shown = [item for i in range(30) for item in recs(client, f"newcomer-{i}")]
    # 50 of 300 items, shown a thousand times each without a reaction: none comes back.
    assert not set(shown) & set(ignored)


def _wait_for_counts(client: TestClient, settings: Settings) -> None:
    """One request, then past the copy's age: the next requests rank with fresh counts."""
    recs(client, "warm-up")
    time.sleep(settings.live_counts_max_age + 0.1)
    recs(client, "warm-up-2")
    time.sleep(0.2)


@pytest.mark.parametrize("user", ["plain", "ünïcode", "with/slash", 'quote"d', "sp ace"])
def test_prefetched_answers_match_the_route_byte_for_byte(client: TestClient, user: str) -> None:
    items = [f'item-{i}-ü/"x' for i in range(60)]
    add(client, items)
    first = client.get(f"/recs/{user.replace('/', '%2F')}?k=4")
    second = client.get(f"/recs/{user.replace('/', '%2F')}?k=4")
    assert first.status_code == second.status_code == 200
    # The first is the route's answer, the second the prefetched layer's.
    assert first.headers["content-type"] == second.headers["content-type"]
    assert (
        first.content
        == json.dumps(first.json(), ensure_ascii=False, separators=(",", ":")).encode()
    )
    assert (
        second.content
        == json.dumps(second.json(), ensure_ascii=False, separators=(",", ":")).encode()
    )
    assert not set(first.json()["item_ids"]) & set(second.json()["item_ids"])


def test_prefetch_recent_ranks_the_latest_raters_first(
    client: TestClient, settings: Settings, redis_client: Redis
) -> None:
    items, genres = catalogue(200)
    add(client, items, genres)
    feedback_state(settings, redis_client).apply(
        [event(f"r{i}", [items[i]], ["like"], ts=1000.0 + i) for i in range(5)]
    )
    done = asyncio.run(prefetch_recent(settings, users=3, budget_seconds=60))
    assert done == 3
    lists = {
        u: redis_client.exists(f"{settings.key_prefix}user:{u}:next")
        for u in ("r4", "r3", "r2", "r1")
    }
    assert lists == {"r4": 1, "r3": 1, "r2": 1, "r1": 0}
    # Ranked deeper than a request ranks: the trainer's lists cost no request any time.
    depth = settings.default_k * settings.prefetch_pages_ahead
    assert redis_client.llen(f"{settings.key_prefix}user:r4:next") == 1 + depth
    # Their lists never hold what they rated.
    assert f"m{items[4]}" not in _upcoming(redis_client, f"{settings.key_prefix}user:r4:next")


def test_a_list_ranked_by_a_request_lives_only_for_the_visit(
    client: TestClient, settings: Settings, redis_client: Redis
) -> None:
    items, genres = catalogue(100)
    add(client, items, genres)
    recs(client, "visitor")
    ttl = redis_client.ttl(f"{settings.key_prefix}user:visitor:next")
    assert 0 < ttl <= settings.prefetch_ttl


def test_keys_an_anonymous_caller_creates_all_expire(
    client: TestClient, settings: Settings, redis_client: Redis
) -> None:
    items, genres = catalogue(100)
    add(client, items, genres)
    for page in range(3):
        recs(client, f"drive-by-{page}")
        recs(client, f"drive-by-{page}")
    per_user = [
        key for key in redis_client.scan_iter(match=f"{settings.key_prefix}user:drive-by-*")
    ]
    assert per_user
    assert all(0 < redis_client.ttl(key) <= settings.impressions_ttl for key in per_user)


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "cross-site"},  # an <img src=".../cleanup"> on another site
        {"sec-fetch-site": "cross-site", "origin": "https://evil.example"},  # fetch()
    ],
)
def test_a_browser_on_another_site_cannot_wipe_or_fill_the_instance(
    client: TestClient, settings: Settings, redis_client: Redis, headers: dict[str, str]
) -> None:
    items, genres = catalogue(10)
    add(client, items, genres)
    for method in (client.get, client.post):
        response = method("/cleanup", headers=headers)
        assert response.status_code == 403 and "another site" in response.json()["error"]
    refused = client.post("/add_items", json={"item_ids": ["x"]}, headers=headers)
    assert refused.status_code == 403
    assert redis_client.hlen(f"{settings.key_prefix}catalogue") == 10
    # Server-side clients (no browser headers) and the same site still can.
    assert client.get("/cleanup", headers={"sec-fetch-site": "same-origin"}).status_code == 200


def test_the_admin_token_header_is_not_offered_to_every_origin(client: TestClient) -> None:
    preflight = client.options(
        "/cleanup",
        headers={
            "origin": "https://any.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "x-admin-token",
        },
    )
    assert preflight.status_code == 400  # Starlette refuses a disallowed header
    feedback = client.options(
        "/recs/u",
        headers={
            "origin": "https://any.example",
            "access-control-request-method": "GET",
            "access-control-request-headers": "content-type",
        },
    )
    assert feedback.status_code == 200


def test_named_origins_may_administer_others_may_not(settings: Settings) -> None:
    named = settings.model_copy(update={"cors_origins": "https://admin.example"})
    with TestClient(create_app(named)) as client:
        other = client.get("/cleanup", headers={"origin": "https://evil.example"})
        assert other.status_code == 403
        own = client.get("/cleanup", headers={"origin": "https://admin.example"})
        assert own.status_code == 200
        preflight = client.options(
            "/cleanup",
            headers={
                "origin": "https://admin.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "x-admin-token",
            },
        )
        assert preflight.status_code == 200
