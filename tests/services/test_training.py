"""The long-running trainer: reads only new log lines, reuses its selection, survives /cleanup."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from redis import Redis

from services.common.keys import Keys
from services.common.settings import Settings
from services.trainer import training
from services.trainer.feedback_state import FeedbackState
from services.trainer.interaction_log import InteractionLog
from services.trainer.training import Trainer
from tests.factories import catalogue, event, two_taste_events

pytestmark = pytest.mark.backends("real", "embedded")


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "model": "lightfm",
            "lightfm_epochs": 3,
            "lightfm_components": 8,
            "reselect_growth": 0.5,
            "reselect_every": 3,
            "neighbours_refresh_growth": 0.1,
        }
    )


@pytest.fixture
def selections(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the datasets ``select_model`` ran on."""
    sizes: list[int] = []
    select = training.select_model  # type: ignore[attr-defined]

    def counted(data: Any, *args: Any, **kwargs: Any) -> Any:
        sizes.append(len(data))
        return select(data, *args, **kwargs)

    monkeypatch.setattr("services.trainer.training.select_model", counted)
    return sizes


def more_likes(users: range, items: list[str]) -> list[Any]:
    return [event(f"late-{u}", items[:2], ["like", "like"]) for u in users]


def test_cycles_fit_once_until_the_data_grew(
    fast: Settings, redis_client: Redis, selections: list[int]
) -> None:
    items, _ = catalogue(12)
    log = InteractionLog(fast.log_path)
    log.append(two_taste_events(items, users=30))
    trainer = Trainer(fast, log, FeedbackState(redis_client, Keys(fast.key_prefix)))
    first = trainer.cycle()
    assert first.published and first.model is not None and len(selections) == 1
    assert "ndcg@10" in first.model.metrics
    # A little more data, one new item: no new selection, the validation metrics carried
    # over, the item neighbours reused (the likes grew less than 10%), none for the new item.
    log.append([event("late-0", [items[0], "brand-new"], ["like", "like"])])
    second = trainer.cycle()
    assert second.published and second.model is not None and len(selections) == 1
    assert second.model.metrics["ndcg@10"] == first.model.metrics["ndcg@10"]
    assert "late-0" in second.model.user_ids and second.model.item_ids[-1] == "brand-new"
    assert np.array_equal(second.model.neighbor_idx[:-1], first.model.neighbor_idx)
    assert (second.model.neighbor_idx[-1] == -1).all()
    assert "neighbours reused" in second.reason
    # Likes grew past 10%: neighbours recomputed, still no selection.
    log.append(more_likes(range(1, 20), items))
    third = trainer.cycle()
    assert len(selections) == 1 and "neighbours reused" not in third.reason
    # Interactions grew past 50% since the selection: select again.
    log.append(more_likes(range(20, 200), items))
    trainer.cycle()
    assert len(selections) == 2
    # ... and after ``reselect_every`` cycles without one, whatever the growth.
    for _ in range(3):
        trainer.cycle()
    assert len(selections) == 2
    trainer.cycle()
    assert len(selections) == 3
    assert trainer.cycle().events == 30 + 200


def test_cleanup_starts_from_an_empty_dataset(fast: Settings, redis_client: Redis) -> None:
    items, _ = catalogue(12)
    log = InteractionLog(fast.log_path)
    log.append(two_taste_events(items, users=30))
    keys = Keys(fast.key_prefix)
    trainer = Trainer(fast, log, FeedbackState(redis_client, keys))
    assert trainer.cycle().published
    # /cleanup as the api and the ingester do it: the epoch first, the log later.
    redis_client.incr(keys.epoch)
    log.truncate()
    log.append([event(f"new-{u}", items[:3], ["like"] * 3) for u in range(8)])
    outcome = trainer.cycle()
    assert outcome.published and outcome.model is not None
    assert outcome.events == 8
    assert sorted(outcome.model.user_ids) == sorted(f"new-{u}" for u in range(8))


def test_a_truncated_log_is_read_again_even_in_the_same_epoch(
    fast: Settings, redis_client: Redis
) -> None:
    """The api bumps the epoch before the ingester truncates: a cycle can fall in between."""
    items, _ = catalogue(12)
    log = InteractionLog(fast.log_path)
    log.append(two_taste_events(items, users=30))
    trainer = Trainer(fast, log, FeedbackState(redis_client, Keys(fast.key_prefix)))
    assert trainer.cycle().events == 30
    log.truncate()
    log.append([event(f"new-{u}", items[:3], ["like"] * 3) for u in range(40)])  # past the offset
    outcome = trainer.cycle()
    assert outcome.events == 40 and outcome.model is not None
    assert all(user.startswith("new-") for user in outcome.model.user_ids)


def test_a_model_trained_across_a_cleanup_is_not_published(
    fast: Settings, redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    items, _ = catalogue(12)
    log = InteractionLog(fast.log_path)
    log.append(two_taste_events(items, users=30))
    keys = Keys(fast.key_prefix)
    trainer = Trainer(fast, log, FeedbackState(redis_client, keys))
    assert trainer.cycle().published
    published = redis_client.get(keys.model_current)
    log.append(more_likes(range(1), items))
    fit = training.fit_model  # type: ignore[attr-defined]

    def wiped_meanwhile(*args: Any, **kwargs: Any) -> Any:
        redis_client.incr(keys.epoch)
        return fit(*args, **kwargs)

    monkeypatch.setattr("services.trainer.training.fit_model", wiped_meanwhile)
    outcome = trainer.cycle()
    assert not outcome.published and outcome.reason == "state was wiped during training"
    assert redis_client.get(keys.model_current) == published
