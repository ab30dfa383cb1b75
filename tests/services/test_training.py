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


class CountingLog(InteractionLog):
    """Counts the events each trainer actually parsed from the log."""

    parsed = 0

    def read_new(self, cursor: Any) -> Any:
        for stored in super().read_new(cursor):
            CountingLog.parsed += 1
            yield stored


def fresh(settings: Settings, redis_client: Redis) -> Trainer:
    """A trainer in a new process, as a Kubernetes Job starts one."""
    CountingLog.parsed = 0
    log = CountingLog(settings.log_path, read_only=True)
    return Trainer(settings, log, FeedbackState(redis_client, Keys(settings.key_prefix)))


def test_a_fresh_trainer_takes_over_what_the_last_one_left(
    fast: Settings, redis_client: Redis, selections: list[int]
) -> None:
    items, _ = catalogue(12)
    log = InteractionLog(fast.log_path)
    log.append(two_taste_events(items, users=30))
    first = fresh(fast, redis_client).cycle()
    assert first.published and first.model is not None and len(selections) == 1
    assert CountingLog.parsed == 30 and log.snapshot_path.exists()
    assert Keys(fast.key_prefix).model_selection.startswith(fast.key_prefix)  # wiped by /cleanup
    log.append([event("late-0", [items[0], "brand-new"], ["like", "like"])])
    # The next Job: parses only the new line, keeps the selection, reuses the neighbours
    # published in the last model's blob.
    second = fresh(fast, redis_client).cycle()
    assert second.published and second.model is not None and len(selections) == 1
    assert CountingLog.parsed == 1 and second.events == 31
    assert "as selected 1 cycle(s) ago" in second.reason and "neighbours reused" in second.reason
    assert second.model.metrics["ndcg@10"] == first.model.metrics["ndcg@10"]
    assert second.model.item_ids[:-1] == first.model.item_ids
    assert np.array_equal(second.model.neighbor_idx[:-1], first.model.neighbor_idx)
    assert (second.model.neighbor_idx[-1] == -1).all()
    # The same data as a trainer that read the whole log.
    whole = Trainer(fast, InteractionLog(fast.log_path), FeedbackState(redis_client, Keys("x:")))
    whole._read("0", log.first_line())
    expected = whole._store.interactions()
    assert second.model.user_ids == expected.user_ids
    # Cycles counted across Jobs: the third one after ``reselect_every`` selects again.
    for _ in range(2):
        log.append([event("late-1", [items[1]], ["like"])])
        fresh(fast, redis_client).cycle()
    assert len(selections) == 1
    log.append([event("late-1", [items[2]], ["like"])])
    fresh(fast, redis_client).cycle()
    assert len(selections) == 2


def test_a_fresh_trainer_trusts_nothing_across_a_cleanup_or_a_rewritten_log(
    fast: Settings, redis_client: Redis, selections: list[int]
) -> None:
    items, _ = catalogue(12)
    keys = Keys(fast.key_prefix)
    log = InteractionLog(fast.log_path)
    log.append(two_taste_events(items, users=30))
    assert fresh(fast, redis_client).cycle().published
    # A /cleanup: the epoch moves on (the api), the log is truncated (the ingester).
    redis_client.incr(keys.epoch)
    assert fresh(fast, redis_client).cycle().published
    assert len(selections) == 2  # the record is of the old epoch
    log.truncate()
    assert not log.snapshot_path.exists()
    log.append([event(f"new-{u}", items[:3], ["like"] * 3) for u in range(40)])
    outcome = fresh(fast, redis_client).cycle()
    assert outcome.events == 40 and CountingLog.parsed == 40 and len(selections) == 3
    assert outcome.model is not None and all(u.startswith("new-") for u in outcome.model.user_ids)
    # Rewritten behind the trainer's back in the same epoch (snapshot left in place): the
    # snapshot and the record are of another log.
    snapshot = log.snapshot_path.read_bytes()
    log.truncate()
    log.append([event(f"other-{u}", items[3:6], ["like"] * 3) for u in range(50)])
    log.snapshot_path.write_bytes(snapshot)
    outcome = fresh(fast, redis_client).cycle()
    assert outcome.events == 50 and CountingLog.parsed == 50 and len(selections) == 4
    assert outcome.model is not None and all(u.startswith("other-") for u in outcome.model.user_ids)
    # Other settings: select again.
    log.append([event("late", items[:1], ["like"])])
    assert fresh(fast.model_copy(update={"lightfm_components": 4}), redis_client).cycle().published
    assert len(selections) == 5


def test_a_damaged_snapshot_means_reading_the_log(fast: Settings, redis_client: Redis) -> None:
    items, _ = catalogue(12)
    log = InteractionLog(fast.log_path)
    log.append(two_taste_events(items, users=30))
    assert fresh(fast, redis_client).cycle().published
    log.snapshot_path.write_bytes(b"not an npz")
    log.append([event("late", items[:1], ["like"])])
    outcome = fresh(fast, redis_client).cycle()
    assert outcome.published and outcome.events == 31 and CountingLog.parsed == 31


def test_no_record_of_a_model_trained_across_a_cleanup(
    fast: Settings, redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    items, _ = catalogue(12)
    keys = Keys(fast.key_prefix)
    log = InteractionLog(fast.log_path)
    log.append(two_taste_events(items, users=30))
    fit = training.select_model  # type: ignore[attr-defined]

    def wiped_meanwhile(*args: Any, **kwargs: Any) -> Any:
        redis_client.incr(keys.epoch)
        return fit(*args, **kwargs)

    monkeypatch.setattr("services.trainer.training.select_model", wiped_meanwhile)
    outcome = fresh(fast, redis_client).cycle()
    assert not outcome.published
    assert not redis_client.exists(keys.model_selection)
