"""/cleanup on a service that has served before, seen by two api replicas at once.

Each replica is its own app with its own in-memory caches (catalogue, model, bandit counts)
over the same Redis, as two api pods are: a cleanup through one must never let the other
serve the wiped catalogue, fail, or come back short.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from redis import Redis

from services.api.main import create_app
from services.common.settings import Settings
from tests.factories import catalogue, event, feedback_state

pytestmark = pytest.mark.backends("real", "embedded")


@pytest.fixture
def replicas(settings: Settings) -> Iterator[tuple[TestClient, TestClient]]:
    with TestClient(create_app(settings)) as first, TestClient(create_app(settings)) as second:
        yield first, second


def test_the_issue_reproduction_answers_with_the_new_catalogue(
    replicas: tuple[TestClient, TestClient],
) -> None:
    api, _ = replicas
    old, _ = catalogue(200)
    api.post("/add_items", json={"item_ids": old})
    assert len(api.get("/recs/u1").json()["item_ids"]) == 10
    assert api.get("/cleanup").status_code == 200
    new = [f"new-{i}" for i in range(12)]
    api.post("/add_items", json={"item_ids": new})
    response = api.get("/recs/u1")
    assert response.status_code == 200
    assert set(response.json()["item_ids"]) <= set(new)
    assert len(response.json()["item_ids"]) == 10


@pytest.mark.parametrize("sizes", [(200, 12, 500, 30), (40, 40, 3)])
def test_cleanups_between_catalogues_of_any_size_under_concurrency(
    replicas: tuple[TestClient, TestClient],
    settings: Settings,
    redis_client: Redis,
    sizes: tuple[int, ...],
) -> None:
    state = feedback_state(settings, redis_client)
    users = [f"same-{i}" for i in range(8)]
    for round_, size in enumerate(sizes):
        cleaner, other = replicas[round_ % 2], replicas[(round_ + 1) % 2]
        assert cleaner.get("/cleanup").status_code == 200
        state.clear_ratings()  # what the ingester does when it reads the cleanup
        items = [f"r{round_}-item-{i}" for i in range(size)]
        genres = [["Drama"] if i % 2 else ["Comedy"] for i in range(size)]
        for start in range(0, size, 100):  # several batches, as clients send them
            chunk = slice(start, start + 100)
            body = {"item_ids": items[chunk], "genres": genres[chunk]}
            assert cleaner.post("/add_items", json=body).status_code == 200
        if size > 3:
            # Some users rated before (and after) the wipe: their ratings apply to new items.
            state.apply([event(users[0], items[:2], ["like", "dislike"])])
        names = users + [f"fresh-{round_}-{i}" for i in range(8)]

        def ask(call: tuple[TestClient, str]) -> tuple[int, list[str], str]:
            client, user = call
            response = client.get(f"/recs/{user}")
            body = response.json() if response.status_code == 200 else {}
            return response.status_code, list(body.get("item_ids", [])), user

        answers = []
        with ThreadPoolExecutor(max_workers=12) as pool:
            # Three pages each: every user's requests in turn, all users at once.
            for page in range(3):
                calls = [(replicas[(i + page) % 2], user) for i, user in enumerate(names)]
                answers += list(pool.map(ask, calls))
        rated = set(items[:2]) if size > 3 else set()
        for status, answer, user in answers:
            assert status == 200
            assert set(answer) <= set(items), f"{user} got items of a wiped catalogue"
            assert len(answer) == len(set(answer))
            unrated = size - (len(rated) if user == users[0] else 0)
            assert len(answer) == min(10, unrated)
            if user == users[0]:
                assert not set(answer) & rated
        # Both replicas agree with Redis afterwards too (no cache left behind).
        for client in (cleaner, other):
            assert set(client.get("/recs/after?k=3").json()["item_ids"]) <= set(items)


def test_parallel_requests_of_one_user_never_repeat_an_item(
    replicas: tuple[TestClient, TestClient],
) -> None:
    api, other = replicas
    items = [f"item-{i}" for i in range(200)]
    api.post("/add_items", json={"item_ids": items})

    def ask(i: int) -> list[str]:
        response = (api, other)[i % 2].get("/recs/eager")
        assert response.status_code == 200
        return list(response.json()["item_ids"])

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(ask, range(20)))
    shown = [item for answer in answers for item in answer]
    assert len(shown) == len(set(shown))  # 20 parallel pages, no item twice
    assert len(shown) >= 100
