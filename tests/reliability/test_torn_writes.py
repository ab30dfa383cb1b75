"""Torn writes: the trainer killed while it writes the log or publishes a model."""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pika
import pytest
from fastapi.testclient import TestClient
from redis import Redis

from services.api.main import create_app
from services.common.keys import Keys
from services.common.serving_model import ServingModel
from services.common.settings import Settings
from services.evaluation.synthetic import SyntheticConfig, generate
from services.trainer.feedback_state import ORPHAN_BLOB_TTL, FeedbackState
from services.trainer.interaction_log import InteractionLog
from tests.e2e.processes import Deployment
from tests.factories import event, publish, two_taste_events


def queue_backlog(settings: Settings, count: int) -> set[str]:
    """Publish ``count`` confirmed events straight to the queue; returns their message ids."""
    connection = pika.BlockingConnection(pika.URLParameters(str(settings.amqp_url)))
    channel = connection.channel()
    channel.exchange_declare(settings.exchange, "direct", durable=True)
    channel.queue_declare(settings.queue, durable=True)
    channel.queue_bind(settings.queue, settings.exchange, settings.routing_key)
    channel.confirm_delivery()
    ids = set()
    for number in range(count):
        message_id = uuid.uuid4().hex
        body = {"user_id": f"ev-{number}", "item_ids": [f"i{number % 97}"], "actions": ["like"]}
        channel.basic_publish(
            settings.exchange,
            settings.routing_key,
            json.dumps(body).encode(),
            pika.BasicProperties(delivery_mode=2, message_id=message_id),
        )
        ids.add(message_id)
    connection.close()
    return ids


def strict_log_ids(path: Path) -> Counter[str]:
    """Event ids in the log; every line must be complete, valid JSON."""
    data = path.read_bytes() if path.exists() else b""
    assert not data or data.endswith(b"\n"), "torn last line left in the log"
    return Counter(json.loads(line)["event_id"] for line in data.splitlines())


@pytest.mark.e2e
@pytest.mark.slow
def test_sigkill_while_ingesting_a_backlog(settings: Settings, tmp_path: Path) -> None:
    """kill -9 the ingester again and again while it writes: the log stays exact."""
    ids = queue_backlog(settings, 8_000)
    # Small batches mean many fsyncs, so the backlog takes long enough to be killed into.
    deployment = Deployment(settings.model_copy(update={"ingest_batch": 20}), tmp_path)
    deployment.extra_env["RECSYS_INGEST_BATCH"] = "20"
    kills_mid_log = 0
    try:
        for delay in (0.05, 0.15, 0.25, 0.1, 0.2, 0.3):
            before = sum(strict_log_ids(settings.log_path).values())
            if before >= len(ids):
                break  # a fast machine drained the backlog before every kill was used
            deployment.start("ingest")
            # Kill only once this run is writing (startup time varies with machine load).
            deadline = time.monotonic() + 60
            while sum(strict_log_ids(settings.log_path).values()) <= before:
                assert time.monotonic() < deadline, deployment.logs()
                time.sleep(0.01)
            time.sleep(delay)
            deployment.stop("ingest", signal.SIGKILL)
            logged = sum(strict_log_ids(settings.log_path).values())
            kills_mid_log += 0 < logged < len(ids)
        deployment.start("ingest")
        deadline = time.monotonic() + 60
        while sum(strict_log_ids(settings.log_path).values()) < len(ids):
            assert time.monotonic() < deadline, deployment.logs()
            time.sleep(0.3)
    finally:
        deployment.stop_all()
    counts = strict_log_ids(settings.log_path)
    print(
        f"[ingest kill -9 x6] queued={len(ids)} logged={len(counts)} "
        f"duplicates={sum(c - 1 for c in counts.values())} kills_mid_log={kills_mid_log}"
    )
    assert kills_mid_log >= 2, "the kills did not land while the log was being written"
    assert set(counts) == ids
    assert max(counts.values()) == 1


@pytest.mark.e2e
def test_trainer_recovers_a_torn_log_tail(settings: Settings, tmp_path: Path) -> None:
    """What a kill mid-append leaves (a half line) is cut; new events start on a fresh line."""
    interaction_log = InteractionLog(settings.log_path)
    interaction_log.append([event(f"old-{u}", ["i1", "i2"], ["like", "like"]) for u in range(5)])
    interaction_log.close()
    with open(settings.log_path, "ab") as file:
        file.write(b'{"event_id": "torn", "user_id": "old-9", "item_ids": ["i')
    ids = queue_backlog(settings, 50)
    deployment = Deployment(settings, tmp_path, extra_env={"RECSYS_MODEL": "popularity"})
    try:
        deployment.start_all()
        deadline = time.monotonic() + 30
        # The trainer process cuts the torn tail when it opens the log, which may be after
        # the api and collector answer: until then the log is still torn.
        while not settings.log_path.read_bytes().endswith(b"\n") or (
            len(strict_log_ids(settings.log_path)) < 55
        ):
            assert time.monotonic() < deadline, deployment.logs()
            time.sleep(0.2)
        deadline = time.monotonic() + 30
        while httpx.get(f"{deployment.api}/model").status_code != 200:
            assert time.monotonic() < deadline, deployment.logs()
            time.sleep(0.2)
    finally:
        deployment.stop_all()
    counts = strict_log_ids(settings.log_path)
    assert "torn" not in counts and ids <= set(counts) and len(counts) == 55
    assert "cutting" in (tmp_path / "trainer.log").read_text()


def test_trainer_killed_between_blob_upload_and_pointer_switch(
    settings: Settings, redis_client: Redis
) -> None:
    """The api keeps serving the last complete model; the orphan blob expires."""
    items = [f"item-{i:02d}" for i in range(20)]
    served = publish(settings, redis_client, two_taste_events(items), "popularity")

    class KilledBeforeSwitch(FeedbackState):
        def __init__(self, redis: Redis, keys: Keys) -> None:
            super().__init__(redis, keys)

            def die(*_: object, **__: object) -> object:
                raise SystemExit("SIGKILL")  # the process is gone before the Lua switch

            self._publish = die  # type: ignore[assignment]

    keys = Keys(settings.key_prefix)
    newer = ServingModel(**{**served.__dict__, "version": "newer"})
    with pytest.raises(SystemExit):
        KilledBeforeSwitch(redis_client, keys).publish_model(newer, "0", keep=2)
    assert 0 < redis_client.ttl(keys.model_blob("newer")) <= ORPHAN_BLOB_TTL
    assert redis_client.get(keys.model_current) == served.version.encode()
    assert redis_client.ttl(keys.model_blob(served.version)) == -1, "published blob must stay"

    with TestClient(create_app(settings)) as api:
        api.post("/add_items", json={"item_ids": items}).raise_for_status()
        body = api.get("/recs/user-0?explain=true").json()
        assert body["model_version"] == served.version
        assert api.get("/model").json()["version"] == served.version

    # An announced version whose blob vanished is never switched to.
    redis_client.delete(keys.model_blob("newer"))
    state = FeedbackState(redis_client, keys)
    state.redis.set(keys.model_blob("gone"), b"x", px=1)
    time.sleep(0.01)
    assert not state._publish(
        keys=[
            keys.epoch,
            keys.model_blob("gone"),
            keys.model_current,
            keys.model_info,
            keys.model_versions,
        ],
        args=["0", "gone", "{}", 2, keys.model_blob("")],
    )
    assert redis_client.get(keys.model_current) == served.version.encode()


@pytest.mark.e2e
@pytest.mark.slow
def test_sigkill_while_training_keeps_the_last_model(
    settings: Settings, tmp_path: Path, redis_client: Redis
) -> None:
    """kill -9 in the middle of a (multi-second) training cycle: the old model stays served."""
    ratings = generate(SyntheticConfig(users=1500, items=400, seed=3))
    likes = ratings.likes()
    interaction_log = InteractionLog(settings.log_path)
    interaction_log.append(
        [
            event(
                ratings.user_ids[ratings.users[n]],
                [ratings.item_ids[ratings.items[n]]],
                ["like" if likes[n] else "dislike"],
                ts=float(ratings.timestamps[n]),
            )
            for n in range(len(ratings))
        ]
    )
    interaction_log.close()
    items = list(ratings.item_ids)
    served = publish(settings, redis_client, two_taste_events(items[:40]), "popularity")
    keys = Keys(settings.key_prefix)
    deployment = Deployment(settings, tmp_path, extra_env={"RECSYS_MODEL": "auto"})
    try:
        deployment.start("api")
        deployment.start("collector")
        deployment.start("trainer")  # trains at once: the log is not empty
        deployment.wait_healthy()
        httpx.post(f"{deployment.api}/add_items", json={"item_ids": items}).raise_for_status()
        trainer_log = tmp_path / "trainer.log"
        deadline = time.monotonic() + 30
        while "validation" not in trainer_log.read_text():  # model selection under way
            assert time.monotonic() < deadline, deployment.logs()
            time.sleep(0.05)
        deployment.stop("trainer", signal.SIGKILL)
        assert "published model" not in trainer_log.read_text(), "killed too late"
        assert redis_client.get(keys.model_current) == served.version.encode()
        body = httpx.get(f"{deployment.api}/recs/user-0?explain=true").json()
        assert body["model_version"] == served.version

        deployment.start("trainer")
        deadline = time.monotonic() + 120
        while redis_client.get(keys.model_current) == served.version.encode():
            assert time.monotonic() < deadline, deployment.logs()
            time.sleep(0.5)
        fresh = redis_client.get(keys.model_current).decode()  # type: ignore[union-attr]
        body = httpx.get(f"{deployment.api}/recs/user-0?explain=true").json()
        assert body["model_version"] == fresh
    finally:
        deployment.stop_all()
