"""The three services as real processes: catalogue, feedback, retrain, and every /recs rule."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.e2e.processes import Deployment, wait_until
from tests.factories import catalogue

pytestmark = [pytest.mark.e2e, pytest.mark.backends("real", "embedded")]


def test_feedback_to_personalised_recommendations(deployment: Deployment) -> None:
    api = httpx.Client(base_url=deployment.api, timeout=10)
    collector = httpx.Client(base_url=deployment.collector, timeout=10)
    items, genres = catalogue(60)
    for start in range(0, 60, 20):  # the catalogue arrives in batches
        body = {"item_ids": items[start : start + 20], "genres": genres[start : start + 20]}
        assert api.post("/add_items", json=body).status_code == 200

    cold = api.get("/recs/newcomer").json()["item_ids"]
    assert len(cold) == 10 and len(set(cold)) == 10 and set(cold) <= set(items)

    # Two tastes: even users like items 0-29 and dislike some of 30-59, odd users the reverse.
    rated: dict[str, set[str]] = {}
    for u in range(30):
        mine, other = (items[:30], items[30:]) if u % 2 == 0 else (items[30:], items[:30])
        likes = [mine[(u * 7 + j) % 30] for j in range(12)]
        dislikes = [other[(u * 3 + j) % 30] for j in range(3)]
        event = {
            "user_id": f"user-{u}",
            "item_ids": likes + dislikes,
            "actions": ["like"] * 12 + ["dislike"] * 3,
        }
        assert collector.post("/interact", json=event).status_code == 200
        rated[f"user-{u}"] = set(likes + dislikes)

    # A first model may cover only the events ingested so far; the next cycles catch up.
    def trained_on_everyone() -> bool:
        response = api.get("/model")
        return response.status_code == 200 and response.json()["users"] == 30

    wait_until(trained_on_everyone, 90, lambda: "no model over all 30 users\n" + deployment.logs())
    model = api.get("/model").json()

    user = "user-0"
    seen: list[str] = []
    first = api.get(f"/recs/{user}?explain=true").json()
    assert first["model_version"] == model["version"]
    for _ in range(4):
        body = api.get(f"/recs/{user}?explain=true").json() if seen else first
        got = body["item_ids"]
        assert len(got) == 10 and len(set(got)) == 10
        assert not set(got) & rated[user], "a rated item came back"
        assert not set(got) & set(seen), "an item was repeated before the catalogue ran out"
        seen += got
        if len(seen) >= 40:
            break
    # Personalised: the model's picks for user-0 come from the half user-0's group likes.
    model_picks = [
        i for i, s in zip(first["item_ids"], first["sources"], strict=True) if s == "model"
    ]
    assert len(model_picks) >= 6
    assert sum(items.index(i) < 30 for i in model_picks) >= len(model_picks) - 1

    # 60 items - 15 rated = 45 unseen at first; after 40 shown only 5 remain unseen.
    remaining = set(items) - rated[user] - set(seen)
    after = api.get(f"/recs/{user}").json()["item_ids"]
    assert remaining <= set(after) and not set(after) & rated[user]

    # A like is reflected within a second: the liked item is gone from the next answers,
    # and the user now gets personal (model) picks instead of the cold popular list.
    fresh = "fresh-user"
    target = items[3]
    accepted = collector.post(
        "/interact", json={"user_id": fresh, "item_ids": [target], "actions": ["like"]}
    )
    assert accepted.status_code == 200
    deadline = time.monotonic() + 1.0
    while True:
        body = api.get(f"/recs/{fresh}?explain=true&k=30").json()
        if target not in body["item_ids"] and "model" in body["sources"]:
            break
        assert time.monotonic() < deadline, f"like not reflected within 1 s: {body}"
        time.sleep(0.05)
    picks = [i for i, s in zip(body["item_ids"], body["sources"], strict=True) if s == "model"]
    assert sum(items.index(i) < 30 for i in picks[:10]) >= 7, picks

    for url in (deployment.api, deployment.collector):
        assert "recsys_http_requests_total" in httpx.get(f"{url}/metrics").text
    trainer_metrics = httpx.get(f"http://127.0.0.1:{deployment.metrics_port}/metrics").text
    assert "recsys_events_acked_total" in trainer_metrics

    assert api.post("/cleanup").status_code == 200
    assert api.get(f"/recs/{user}").json() == {"item_ids": []}
