"""Small synthetic data for tests: catalogues, events and published models."""

from __future__ import annotations

import random
import time
import uuid

from redis import Redis

from services.common.events import StoredEvent
from services.common.keys import Keys
from services.common.serving_model import ServingModel
from services.common.settings import Settings
from services.trainer.dataset import from_events
from services.trainer.feedback_state import FeedbackState
from services.trainer.models import ModelParams, fit_model

GENRES = ["Drama", "Comedy", "Action", "Horror"]


def catalogue(n: int) -> tuple[list[str], list[list[str]]]:
    items = [f"item-{i:03d}" for i in range(n)]
    return items, [[GENRES[i % len(GENRES)]] for i in range(n)]


def event(user: str, items: list[str], actions: list[str], ts: float | None = None) -> StoredEvent:
    return StoredEvent(
        event_id=uuid.uuid4().hex,
        user_id=user,
        item_ids=items,
        actions=actions,  # type: ignore[arg-type]
        timestamp=ts if ts is not None else time.time(),
    )


def two_taste_events(items: list[str], users: int = 20) -> list[StoredEvent]:
    """Half the users like the first half of the catalogue, the others the second half."""
    half = len(items) // 2
    events = []
    for u in range(users):
        liked = items[:half] if u % 2 == 0 else items[half:]
        picks = random.Random(u).sample(liked, k=len(liked) * 3 // 5)
        events.append(event(f"user-{u}", picks, ["like"] * len(picks)))
    return events


def feedback_state(settings: Settings, redis: Redis) -> FeedbackState:
    return FeedbackState(redis, Keys(settings.key_prefix))


def publish(
    settings: Settings, redis: Redis, events: list[StoredEvent], family: str
) -> ServingModel:
    model = fit_model(family, from_events(events), ModelParams(epochs=5, components=8))
    model = ServingModel(**{**model.__dict__, "version": uuid.uuid4().hex[:8]})
    state = feedback_state(settings, redis)
    assert state.publish_model(model, state.epoch(), keep=2)
    return model
