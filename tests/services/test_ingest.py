"""Ingest on both backends: log before ack, dedup, cleanup, training."""

from __future__ import annotations

import errno
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from redis import Redis

from services.common.broker import CLEANUP_TOKEN_HEADER, CONTROL_CLEANUP, CONTROL_HEADER
from services.common.keys import Keys
from services.common.settings import Settings
from services.trainer.feedback_state import FeedbackState
from services.trainer.ingest import Ingester
from services.trainer.interaction_log import InteractionLog
from services.trainer.training import train_once
from services.trainer.worker import TrainingLoop, run_train_once
from tests.brokers import publish_raw, queue_depth

pytestmark = pytest.mark.backends("real", "embedded")


def publish(
    settings: Settings,
    body: dict[str, object] | bytes,
    *,
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    publish_raw(settings, body, message_id=message_id, headers=headers)


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture
def state(settings: Settings, redis_client: Redis) -> FeedbackState:
    return FeedbackState(redis_client, Keys(settings.key_prefix))


@pytest.fixture
def running(settings: Settings, state: FeedbackState) -> Iterator[Ingester]:
    ingester = Ingester(settings, InteractionLog(settings.log_path), state)
    thread = threading.Thread(target=ingester.run, daemon=True)
    thread.start()
    assert ingester.ready.wait(10)
    yield ingester
    ingester.stop.set()
    thread.join(10)


def logged(settings: Settings) -> list[dict[str, object]]:
    return [json.loads(line) for line in settings.log_path.read_text().splitlines()]


EVENT = {
    "user_id": "u1",
    "item_ids": ["a", "b"],
    "actions": ["like", "dislike"],
    "timestamp": 100.0,
}


def test_events_are_logged_applied_and_acked(
    settings: Settings, running: Ingester, redis_client: Redis
) -> None:
    publish(settings, EVENT, message_id="m1")
    wait_for(lambda: running.stats.stored == 1)
    [line] = logged(settings)
    assert line["event_id"] == "m1" and line["item_ids"] == ["a", "b"]
    rated = redis_client.hgetall(f"{settings.key_prefix}user:u1:rated")
    assert rated == {b"a": b"like|100.0", b"b": b"dislike|100.0"}
    wait_for(lambda: queue_depth(settings) == 0)


def test_redelivered_event_is_stored_once(settings: Settings, running: Ingester) -> None:
    publish(settings, EVENT, message_id="same")
    publish(settings, EVENT, message_id="same")
    wait_for(lambda: running.stats.duplicates == 1)
    assert len(logged(settings)) == 1


def test_restart_keeps_deduplicating(settings: Settings, state: FeedbackState) -> None:
    InteractionLog(settings.log_path).append([])
    first = Ingester(settings, InteractionLog(settings.log_path), state)
    publish(settings, EVENT, message_id="x")
    thread = threading.Thread(target=first.run, daemon=True)
    thread.start()
    wait_for(lambda: first.stats.stored == 1)
    first.stop.set()
    thread.join(10)
    second = Ingester(settings, InteractionLog(settings.log_path), state)
    assert "x" in second.seen


def test_latest_action_wins_even_when_older_arrives_later(
    settings: Settings, running: Ingester, redis_client: Redis
) -> None:
    publish(settings, {**EVENT, "item_ids": ["a"], "actions": ["dislike"], "timestamp": 200.0})
    publish(settings, {**EVENT, "item_ids": ["a"], "actions": ["like"], "timestamp": 150.0})
    wait_for(lambda: running.stats.stored == 2)
    assert redis_client.hget(f"{settings.key_prefix}user:u1:rated", "a") == b"dislike|200.0"


def test_poison_message_is_dropped_not_looping(settings: Settings, running: Ingester) -> None:
    publish(settings, b"\xff not json")
    publish(settings, EVENT, message_id="ok")
    wait_for(lambda: running.stats.stored == 1 and running.stats.rejected == 1)
    wait_for(lambda: queue_depth(settings) == 0)


def test_no_training_between_a_cleanup_and_the_log_cut(
    settings: Settings, running: Ingester, state: FeedbackState, redis_client: Redis
) -> None:
    """The api marks the cleanup before it moves the epoch; the ingester lifts the mark."""
    for u in range(6):
        body = {"user_id": f"u{u}", "item_ids": ["a", "b"], "actions": ["like", "like"]}
        publish(settings, body)
    wait_for(lambda: running.stats.stored == 6)
    keys = Keys(settings.key_prefix)
    redis_client.set(keys.cleanup_pending, "t1")
    redis_client.incr(keys.epoch)
    skipped = train_once(settings, InteractionLog(settings.log_path), state)
    assert not skipped.published and "cleanup" in skipped.reason
    assert not redis_client.exists(keys.model_current)
    publish(settings, b"{}", headers={CONTROL_HEADER: CONTROL_CLEANUP, CLEANUP_TOKEN_HEADER: "t1"})
    wait_for(lambda: running.stats.cleanups == 1)
    wait_for(lambda: not redis_client.exists(keys.cleanup_pending))
    assert logged(settings) == []


def test_cleanup_message_truncates_the_log(
    settings: Settings, running: Ingester, redis_client: Redis
) -> None:
    publish(settings, EVENT, message_id="before")
    wait_for(lambda: running.stats.stored == 1)
    publish(settings, b"{}", headers={CONTROL_HEADER: CONTROL_CLEANUP})
    publish(settings, {**EVENT, "user_id": "u2"}, message_id="after")
    wait_for(lambda: running.stats.cleanups == 1 and running.stats.stored == 2)
    assert [line["event_id"] for line in logged(settings)] == ["after"]
    assert not redis_client.exists(f"{settings.key_prefix}user:u1:rated")


def test_train_once_publishes_a_model_atomically(
    settings: Settings, running: Ingester, state: FeedbackState, redis_client: Redis
) -> None:
    for u in range(12):
        items = [f"i{(u % 3) * 5 + j}" for j in range(5)]
        publish(
            settings,
            {
                "user_id": f"u{u}",
                "item_ids": items,
                "actions": ["like"] * 5,
                "timestamp": 1000.0 + u,
            },
        )
    wait_for(lambda: running.stats.stored == 12)
    outcome = train_once(settings, InteractionLog(settings.log_path), state)
    assert outcome.published and outcome.model is not None
    keys = Keys(settings.key_prefix)
    assert redis_client.get(keys.model_current).decode() == outcome.model.version
    assert redis_client.exists(keys.model_blob(outcome.model.version))
    info = json.loads(redis_client.get(keys.model_info))
    assert info["version"] == outcome.model.version


def test_model_trained_before_a_wipe_is_not_published(
    settings: Settings, state: FeedbackState, redis_client: Redis
) -> None:
    from services.trainer.dataset import from_events
    from services.trainer.models import fit_model
    from tests.factories import catalogue, two_taste_events

    items, _ = catalogue(10)
    model = fit_model("popularity", from_events(two_taste_events(items)))
    epoch = state.epoch()
    redis_client.incr(Keys(settings.key_prefix).epoch)  # a /cleanup happened meanwhile
    assert not state.publish_model(model, epoch, keep=2)
    assert not redis_client.exists(Keys(settings.key_prefix).model_current)


def test_every_cycle_with_new_data_publishes_a_new_model(
    settings: Settings, running: Ingester, state: FeedbackState, redis_client: Redis
) -> None:
    """Regression: the published model must not veto its successors (it saw their holdout)."""
    loop = TrainingLoop(settings, InteractionLog(settings.log_path), state)
    running.on_stored = loop.mark_dirty
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    current_key = Keys(settings.key_prefix).model_current
    versions: list[bytes] = []
    try:
        for round_ in range(2):
            for u in range(12):
                items = [f"i{(u % 3) * 5 + j}" for j in range(5)]
                body = {
                    "user_id": f"u{round_}-{u}",
                    "item_ids": items,
                    "actions": ["like"] * 5,
                    "timestamp": 1000.0 + u,
                }
                publish(settings, body)
            wait_for(
                lambda: (v := redis_client.get(current_key)) is not None and v not in versions,
                timeout=30,
            )
            versions.append(redis_client.get(current_key))
    finally:
        loop.stop.set()
        thread.join(30)
    assert len(set(versions)) == 2


def test_a_published_model_prefetches_the_latest_raters_pages(
    settings: Settings, running: Ingester, redis_client: Redis
) -> None:
    keys = Keys(settings.key_prefix)
    redis_client.hset(keys.catalogue, mapping={f"i{i}": "[]" for i in range(40)})
    redis_client.incr(keys.catalogue_version)
    for u in range(12):
        items = [f"i{(u % 3) * 5 + j}" for j in range(5)]
        body = {"user_id": f"u{u}", "item_ids": items, "actions": ["like"] * 5}
        publish(settings, {**body, "timestamp": 1000.0 + u})
    wait_for(lambda: running.stats.stored == 12)
    few = settings.model_copy(update={"prefetch_users": 3})
    assert run_train_once(few) == 0
    prefetched = {u for u in range(12) if redis_client.exists(keys.prefetched(f"u{u}"))}
    assert prefetched == {9, 10, 11}
    entries = redis_client.lrange(keys.prefetched("u11"), 0, -1)
    assert entries[0].startswith(b"1|")  # ranked with the model
    assert not {e[1:].decode() for e in entries[1:]} & {f"i{10 + j}" for j in range(5)}


def test_train_once_jobs_start_from_what_the_last_job_left(
    settings: Settings, running: Ingester, redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each `recsys train --once` is a fresh process: the second one neither selects again
    nor parses the lines the first one parsed, and still publishes a new model."""
    from services.trainer import training

    selections: list[int] = []
    select = training.select_model  # type: ignore[attr-defined]

    def counted(data: Any, *args: Any, **kwargs: Any) -> Any:
        selections.append(len(data))
        return select(data, *args, **kwargs)

    monkeypatch.setattr("services.trainer.training.select_model", counted)
    keys = Keys(settings.key_prefix)

    def send(users: range) -> None:
        for u in users:
            items = [f"i{(u % 3) * 5 + j}" for j in range(5)]
            body = {"user_id": f"u{u}", "item_ids": items, "actions": ["like"] * 5}
            publish(settings, {**body, "timestamp": 1000.0 + u})

    send(range(30))
    wait_for(lambda: running.stats.stored == 30)
    no_prefetch = settings.model_copy(update={"prefetch_users": 0})
    assert run_train_once(no_prefetch) == 0
    first = redis_client.get(keys.model_current)
    assert first is not None and len(selections) == 1
    assert redis_client.exists(keys.model_selection)
    assert settings.log_path.with_name("interactions.log.snapshot.npz").exists()
    send(range(30, 32))
    wait_for(lambda: running.stats.stored == 32)
    assert run_train_once(no_prefetch) == 0
    assert len(selections) == 1
    assert redis_client.get(keys.model_current) not in (None, first)
    info = redis_client.get(keys.model_info)
    assert isinstance(info, bytes) and json.loads(info)["users"] == 32


def test_duplicates_within_one_batch_are_logged_once(
    settings: Settings, state: FeedbackState
) -> None:
    publish(settings, EVENT, message_id="twice")
    publish(settings, EVENT, message_id="twice")
    ingester = Ingester(settings, InteractionLog(settings.log_path), state)
    thread = threading.Thread(target=ingester.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: ingester.stats.stored == 1 and ingester.stats.duplicates == 1)
        wait_for(lambda: queue_depth(settings) == 0)
    finally:
        ingester.stop.set()
        thread.join(10)
    assert [line["event_id"] for line in logged(settings)] == ["twice"]


class FlakyTruncateLog(InteractionLog):
    """The real log, whose truncate fails with EIO the first ``failures`` times."""

    failures = 2

    def truncate(self) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError(errno.EIO, "Input/output error")
        super().truncate()


class RecordingState(FeedbackState):
    """The real FeedbackState, remembering every status note set."""

    notes: list[tuple[str, str | None]]

    def set_status(self, component: str, note: str | None) -> None:
        self.notes.append((component, note))
        super().set_status(component, note)


def test_a_failing_log_truncate_is_a_storage_error_not_a_broker_error(
    settings: Settings, redis_client: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """The cleanup stays unacknowledged and is retried in place; the note says why."""
    caplog.set_level(logging.WARNING, logger="services.trainer.ingest")
    keys = Keys(settings.key_prefix)
    state = RecordingState(redis_client, keys)
    state.notes = []
    publish(settings, EVENT, message_id="before")
    publish(settings, b"{}", headers={CONTROL_HEADER: CONTROL_CLEANUP})
    publish(settings, {**EVENT, "user_id": "u2"}, message_id="after")
    ingester = Ingester(settings, FlakyTruncateLog(settings.log_path), state)
    thread = threading.Thread(target=ingester.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: ingester.stats.cleanups == 1 and ingester.stats.stored == 2)
        wait_for(lambda: queue_depth(settings) == 0)
    finally:
        ingester.stop.set()
        thread.join(10)
    assert [line["event_id"] for line in logged(settings)] == ["after"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert not [w for w in warnings if "broker" in w], warnings
    assert sum("cannot write the interaction log" in w for w in warnings) == 2
    failing = [note for component, note in state.notes if component == "ingest" and note]
    assert len(failing) == 2 and "Input/output error" in failing[0]
    assert state.notes[-1] == ("ingest", None)
    assert redis_client.hget(keys.status, "ingest") is None
