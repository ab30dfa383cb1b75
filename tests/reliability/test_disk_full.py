"""The interaction log on a full disk: nothing is acknowledged, nothing is lost.

A real tmpfs holds the log; a filler file takes all but one page, so every append tears
mid-way (each event is larger than a page) and then fails with ENOSPC.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from redis import Redis

from services.api.main import create_app as create_api
from services.collector.main import create_app as create_collector
from services.common.keys import Keys
from services.common.settings import Settings
from services.trainer.feedback_state import FeedbackState
from services.trainer.ingest import Ingester
from services.trainer.interaction_log import InteractionLog
from tests.brokers import queue_depth
from tests.tmpfs import PAGE, fill, tiny_tmpfs

pytestmark = pytest.mark.backends("real", "embedded")

EVENTS = 400
# Long ids make a line of ~6 KiB (more than the one free page) from a few items; dislikes
# keep applying the ratings cheap (a like also counts co-likes).
ITEMS = [f"item-{n:02d}-" + "x" * 230 for n in range(24)]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout:.0f}s: {what}")


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def start_ingester(
    settings: Settings, log_path: Path, state: FeedbackState
) -> tuple[Ingester, threading.Thread]:
    ingester = Ingester(settings, InteractionLog(log_path), state)
    thread = threading.Thread(target=ingester.run, daemon=True)
    thread.start()
    assert ingester.ready.wait(10)
    return ingester, thread


def stop_ingester(ingester: Ingester, thread: threading.Thread) -> None:
    ingester.stop.set()
    thread.join(30)
    assert not thread.is_alive(), "the ingester did not stop"
    ingester.log.close()


def strict_log_ids(path: Path) -> Counter[str]:
    """Event ids in the log; every line must be complete and readable."""
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), "torn last line left in the log"
    return Counter(json.loads(line)["event_id"] for line in data.splitlines())


def test_disk_full_keeps_events_queued_reports_it_and_loses_none(
    settings: Settings, redis_client: Redis, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings.model_copy(update={"ingest_batch": 50})
    state = FeedbackState(redis_client, Keys(settings.key_prefix))
    caplog.set_level(logging.WARNING, logger="services.trainer.ingest")
    with tiny_tmpfs(tmp_path / "disk", 1024 * PAGE) as disk:
        log_path = disk / "interactions.log"
        InteractionLog(log_path).close()
        fill(disk / "filler", leave_free=PAGE)

        # Accepted through the collector: the broker holds a durable copy of each.
        accepted: set[str] = set()
        with TestClient(create_collector(settings)) as collector:
            for number in range(EVENTS):
                body = {
                    "user_id": f"ev-{number}",
                    "item_ids": ITEMS,
                    "actions": ["dislike"] * len(ITEMS),
                }
                response = collector.post("/interact", json=body)
                assert response.status_code == 200, response.text
                accepted.add(response.json()["event_id"])
        assert len(accepted) == EVENTS

        errors_before = metric("recsys_ingest_storage_errors_total")
        ingester, thread = start_ingester(settings, log_path, state)
        with TestClient(create_api(settings)) as api:
            try:
                wait_for(
                    lambda: "degraded" in api.get("/healthcheck").json(),
                    "/healthcheck reports the failing interaction log",
                )
                health = api.get("/healthcheck")
                assert health.status_code == 200  # degraded, still serving
                body = health.json()
                assert body["status"] == "degraded"
                assert "No space left on device" in body["degraded"]["interaction_log"]
                assert str(log_path) in body["degraded"]["interaction_log"]
                assert metric("recsys_ingest_storage_blocked") == 1
                assert metric("recsys_ingest_storage_errors_total") > errors_before
                assert any(
                    "interaction log" in record.getMessage()
                    for record in caplog.records
                    if record.levelno == logging.WARNING
                )
                # Every attempt tore a line mid-way; each was cut back.
                assert log_path.read_bytes() == b""
                assert ingester.stats.stored == 0 and not ingester.seen
            finally:
                stop_ingester(ingester, thread)
            wait_for(
                lambda: queue_depth(settings) == EVENTS,
                f"all {EVENTS} events back in the queue, none acknowledged "
                f"(queue holds {queue_depth(settings)})",
            )

            # Space comes back while a fresh ingester is blocked on the full disk.
            errors_before = metric("recsys_ingest_storage_errors_total")
            ingester, thread = start_ingester(settings, log_path, state)
            try:
                wait_for(
                    lambda: metric("recsys_ingest_storage_errors_total") > errors_before,
                    "the second ingester hits the full disk too",
                )
                (disk / "filler").unlink()
                wait_for(
                    lambda: ingester.stats.stored == EVENTS,
                    f"all {EVENTS} events stored once space is back",
                    timeout=60,
                )
                wait_for(lambda: queue_depth(settings) == 0, "the queue drained")
                wait_for(
                    lambda: api.get("/healthcheck").json()["status"] == "ok",
                    "/healthcheck back to ok",
                )
                body = api.get("/healthcheck").json()
                assert "degraded" not in body and "ingest" not in body.get("notes", {})
                assert metric("recsys_ingest_storage_blocked") == 0
            finally:
                stop_ingester(ingester, thread)

        counts = strict_log_ids(log_path)
        lost = accepted - set(counts)
        print(
            f"[disk full] accepted={len(accepted)} in_log={len(counts)} lost={len(lost)} "
            f"duplicates={sum(c - 1 for c in counts.values())}"
        )
        assert not lost and set(counts) == accepted
        assert max(counts.values()) == 1
        assert len(list(InteractionLog(log_path, read_only=True).read())) == EVENTS
