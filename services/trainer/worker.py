"""Process entry points: ingest only, train (once or periodically), or both together."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

from prometheus_client import start_http_server
from redis import Redis
from redis.exceptions import RedisError

from services.common.keys import Keys
from services.common.settings import Settings
from services.trainer.feedback_state import FeedbackState
from services.trainer.ingest import Ingester
from services.trainer.interaction_log import InteractionLog
from services.trainer.training import Trainer, TrainingOutcome, train_once

log = logging.getLogger(__name__)


def _state(settings: Settings) -> FeedbackState:
    redis = Redis.from_url(
        settings.redis_server_url,
        socket_timeout=settings.redis_timeout * 5,
        socket_connect_timeout=settings.redis_timeout,
    )
    return FeedbackState(redis, Keys(settings.key_prefix), settings.feedback_types)


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, _: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _serve_metrics(settings: Settings) -> None:
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.host)


def run_ingest(settings: Settings) -> int:
    """Consume the queue forever (Kubernetes: the ingest Deployment)."""
    _serve_metrics(settings)
    ingester = Ingester(settings, InteractionLog(settings.log_path), _state(settings))
    _stop_on_signals(ingester.stop)
    ingester.run()
    return 0


def run_rebuild(settings: Settings, *, train: bool) -> int:
    """Restore ratings (and a model) in Redis from the log after Redis lost its data."""
    from services.trainer.rebuild import rebuild

    outcome = rebuild(
        settings, InteractionLog(settings.log_path, read_only=True), _state(settings), train=train
    )
    log.info(
        "rebuild done in %.1fs: %d events of %d users replayed, model published: %s, "
        "catalogue items: %d",
        outcome.seconds,
        outcome.events,
        outcome.users,
        outcome.model_published,
        outcome.catalogue_items,
    )
    return 0


def write_termination_message(settings: Settings, outcome: TrainingOutcome) -> None:
    if settings.termination_log is not None:
        settings.termination_log.write_text(json.dumps(outcome.summary())[:4000])


def run_train_once(settings: Settings) -> int:
    """One cycle (Kubernetes: a trainer Job); exit 0 when a model is published or kept."""
    # Beside a running ingester, read-only: opening the log for writing cuts a torn last
    # line, which may be the ingester's write in progress.
    path = settings.log_path
    interaction_log = InteractionLog(path, read_only=path.exists())
    outcome = train_once(settings, interaction_log, _state(settings))
    write_termination_message(settings, outcome)
    log.info("training outcome: %s", outcome.summary())
    if outcome.published:
        prefetch_after_publish(settings)
    return 0


def prefetch_after_publish(settings: Settings) -> None:
    """Rank the most recently active users' next pages with the model just published."""
    if settings.prefetch_users == 0:
        return
    # Imported here: ingest-only processes (and the trainer's start-up, which cuts a torn
    # log tail) do without the api's modules.
    from threadpoolctl import threadpool_limits

    from services.core.prefetcher import run_prefetch

    # One BLAS thread: per-user products are small, and threads made them 3x slower.
    with threadpool_limits(limits=1, user_api="blas"):
        try:
            run_prefetch(settings, settings.prefetch_users, settings.train_interval)
        except RedisError:
            log.exception("prefetch failed; those users are ranked on their next visit")


class TrainingLoop:
    """Retrains every interval when new events arrived since the last cycle.

    One ``Trainer`` for the process lifetime: it keeps the parsed log, the model selection
    and the item neighbours between cycles (see ``services.trainer.training.Trainer``).
    """

    def __init__(self, settings: Settings, interaction_log: InteractionLog, state: FeedbackState):
        self.settings = settings
        self.log = interaction_log
        self.state = state
        self.trainer = Trainer(settings, interaction_log, state)
        self.stop = threading.Event()
        self.dirty = threading.Event()

    def mark_dirty(self, *_: object) -> None:
        self.dirty.set()

    def run(self) -> None:
        while not self.stop.wait(self.settings.train_interval):
            if not self.dirty.is_set():
                continue
            self.dirty.clear()
            try:
                outcome = self.trainer.cycle()
            except Exception:
                log.exception("training cycle failed; the last model stays in service")
                self.dirty.set()
                continue
            if not outcome.published:
                log.info("no model published: %s", outcome.reason)
                continue
            prefetch_after_publish(self.settings)


def _at_lower_priority(run: Callable[[], None], nice: int) -> None:
    """Run at a higher niceness (this thread and the fitting threads it starts).

    Fits take every core for seconds; beside the api (``recsys up``) they made /recs wait
    (measured in the cold-start benchmark). Ingestion stays on its own thread, at the
    process's priority, so feedback keeps reaching /recs at once.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except OSError as error:
        log.warning("training keeps the normal priority: %r", error)
    run()


def run_trainer(settings: Settings) -> int:
    """Ingest and periodic training in one process (local default)."""
    _serve_metrics(settings)
    interaction_log = InteractionLog(settings.log_path)
    state = _state(settings)
    loop = TrainingLoop(settings, interaction_log, state)
    ingester = Ingester(
        settings, interaction_log, state, on_stored=loop.mark_dirty, on_cleanup=loop.mark_dirty
    )
    if ingester.seen:
        loop.dirty.set()  # train on what the log already holds
    _stop_on_signals(ingester.stop)
    consumer = threading.Thread(target=ingester.run, name="ingest", daemon=True)
    consumer.start()
    trainer = threading.Thread(
        target=_at_lower_priority,
        args=(loop.run, settings.training_nice),
        name="train",
        daemon=True,
    )
    trainer.start()
    while not ingester.stop.is_set():
        time.sleep(0.2)
    loop.stop.set()
    consumer.join(timeout=10)
    trainer.join(timeout=60)
    return 0
