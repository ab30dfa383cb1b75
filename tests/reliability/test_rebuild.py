"""Redis loss: `recsys rebuild` restores ratings and a model from the durable log."""

from __future__ import annotations

import random
from collections.abc import Sequence

from fastapi.testclient import TestClient
from redis import Redis

from services.api.main import create_app
from services.common.events import StoredEvent
from services.common.keys import Keys
from services.common.settings import Settings
from services.trainer.feedback_state import FeedbackState
from services.trainer.interaction_log import InteractionLog
from services.trainer.rebuild import BATCH, rebuild
from tests.factories import event


class HealthObservingState(FeedbackState):
    """The real FeedbackState; before each batch it asks the api's /healthcheck what it says."""

    def __init__(self, redis: Redis, keys: Keys, api: TestClient) -> None:
        super().__init__(redis, keys)
        self.api = api
        self.seen_notes: list[dict[str, str]] = []

    def apply(self, events: Sequence[StoredEvent]) -> None:
        body = self.api.get("/healthcheck").json()
        self.seen_notes.append(body.get("notes", {}))
        super().apply(events)


def synthetic_log(settings: Settings, n: int) -> tuple[InteractionLog, dict[str, dict[str, str]]]:
    """n events of 300 users on 60 items; returns the latest action per (user, item)."""
    rng = random.Random(7)
    interaction_log = InteractionLog(settings.log_path)
    latest: dict[str, dict[str, str]] = {}
    events = []
    for number in range(n):
        user = f"user-{rng.randrange(300)}"
        item = f"item-{rng.randrange(60)}"
        action = "like" if rng.random() < 0.8 else "dislike"
        events.append(event(user, [item], [action], ts=1000.0 + number))
        latest.setdefault(user, {})[item] = action
    interaction_log.append(events)
    interaction_log.close()
    return interaction_log, latest


def test_rebuild_restores_ratings_and_model_and_reports_progress(
    settings: Settings, redis_client: Redis
) -> None:
    n = BATCH * 3 + 17
    _, latest = synthetic_log(settings, n)
    # The log ends with a line being written by a live ingester: rebuild must not cut it.
    with open(settings.log_path, "ab") as file:
        file.write(b'{"event_id": "half-writ')
    size = settings.log_path.stat().st_size
    keys = Keys(settings.key_prefix)
    with TestClient(create_app(settings)) as api:
        assert api.get("/model").status_code == 404  # Redis is empty: nothing to serve
        state = HealthObservingState(redis_client, keys, api)
        outcome = rebuild(
            settings, InteractionLog(settings.log_path, read_only=True), state, train=True
        )

        assert outcome.events == n and outcome.users == len(latest)
        assert outcome.model_published and outcome.catalogue_items == 0
        # /healthcheck showed the rebuild and its progress while it ran, and not after.
        notes = [note.get("rebuild", "") for note in state.seen_notes]
        assert notes[0] == f"replaying ratings from the log: 0/{n} events"
        assert f"replaying ratings from the log: {BATCH}/{n} events" in notes
        assert "notes" not in api.get("/healthcheck").json()
        assert api.get("/model").json()["users"] == len(latest)

    for user, items in latest.items():
        stored = {
            k.decode(): v.decode().split("|")[0]
            for k, v in redis_client.hgetall(keys.rated(user)).items()
        }
        assert stored == items, user
    assert settings.log_path.stat().st_size == size, "rebuild changed the log"


def test_rebuild_never_overrides_newer_ratings(settings: Settings, redis_client: Redis) -> None:
    """Run beside a live ingester: an old event replayed late must not win."""
    interaction_log = InteractionLog(settings.log_path)
    interaction_log.append([event("u1", ["a"], ["like"], ts=100.0)])
    interaction_log.close()
    state = FeedbackState(redis_client, Keys(settings.key_prefix))
    state.apply([event("u1", ["a"], ["dislike"], ts=200.0)])  # ingested after the loss
    rebuild(settings, InteractionLog(settings.log_path, read_only=True), state, train=False)
    assert redis_client.hget(Keys(settings.key_prefix).rated("u1"), "a") == b"dislike|200.0"
