"""Embedded mode keeps its data across restarts: catalogue, ratings, model, log, queue.

Embedded only: with real servers, persistence is the servers' job (tests/reliability).
"""

from __future__ import annotations

import json

import httpx
import psutil
import pytest

from services.common.settings import Settings
from tests.e2e.processes import Deployment, wait_until
from tests.factories import catalogue

pytestmark = [pytest.mark.e2e, pytest.mark.backends("embedded")]


def logged_ids(settings: Settings) -> list[str]:
    lines = settings.log_path.read_text().splitlines()
    return [json.loads(line)["event_id"] for line in lines]


def crash(deployment: Deployment) -> None:
    """SIGKILL `recsys up` and every child at once (Redis included): a power-cut."""
    root = psutil.Process(deployment.processes.pop("up").pid)
    tree = [*root.children(recursive=True), root]
    for process in tree:
        process.kill()
    psutil.wait_procs(tree, timeout=10)


def test_embedded_data_survives_stop_and_crash(deployment: Deployment, settings: Settings) -> None:
    api = httpx.Client(base_url=deployment.api, timeout=10)
    items, genres = catalogue(20)
    titles = [f"Title {i}" for i in range(20)]
    added = api.post("/add_items", json={"item_ids": items, "genres": genres, "titles": titles})
    assert added.status_code == 200

    def interact(user: str, liked: list[str]) -> str:
        body = {"user_id": user, "item_ids": liked, "actions": ["like"] * len(liked)}
        response = httpx.post(f"{deployment.collector}/interact", json=body, timeout=10)
        assert response.status_code == 200
        return str(response.json()["event_id"])

    for u in range(12):
        interact(f"user-{u}", items[:10] if u % 2 == 0 else items[10:])
    wait_until(lambda: api.get("/model").status_code == 200, 60, deployment.logs)
    model = api.get("/model").json()
    details = api.get("/items", params={"id": items[:3]}).json()
    assert [d["title"] for d in details["items"]] == titles[:3]
    logged = logged_ids(settings)
    assert len(logged) == 12

    deployment.stop_all()  # SIGTERM: a clean stop
    deployment.start_all()
    assert api.get("/model").json()["version"] == model["version"]
    assert api.get("/items", params={"id": items[:3]}).json() == details
    assert logged_ids(settings) == logged
    assert not set(api.get("/recs/user-0?k=20").json()["item_ids"]) & set(items[:10])

    # Accepted, then everything dies at once before (or while) the trainer stores it.
    event_id = interact("late-user", [items[19]])
    crash(deployment)
    deployment.start_all()
    wait_until(lambda: event_id in logged_ids(settings), 10, "accepted event lost in a crash")
    assert logged_ids(settings)[:12] == logged
    wait_until(
        lambda: items[19] not in api.get("/recs/late-user?k=19").json()["item_ids"],
        5,
        "late-user's rating not in Redis after the crash",
    )
    assert api.get("/items", params={"id": items[:3]}).json() == details
    health = api.get("/healthcheck").json()
    assert health["status"] == "ok" and health["queue_depth"] == 0
