"""One training cycle: read the log, fit and select a model, publish it atomically."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from services.common.events import StoredEvent
from services.common.metrics import (
    LAST_TRAINING_SUCCESS,
    TRAINING_DURATION,
    TRAINING_RUNS,
    record_model,
)
from services.common.serving_model import ServingModel
from services.common.settings import Settings
from services.trainer.dataset import from_events
from services.trainer.feedback_state import FeedbackState
from services.trainer.interaction_log import InteractionLog
from services.trainer.models import ModelParams
from services.trainer.selection import select_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingOutcome:
    published: bool
    model: ServingModel | None
    reason: str
    seconds: float
    events: int

    def summary(self) -> dict[str, Any]:
        info = self.model.info() if self.model else {}
        return {
            **info,
            "published": self.published,
            "reason": self.reason,
            "seconds": round(self.seconds, 3),
            "events": self.events,
        }


def model_params(settings: Settings) -> ModelParams:
    return ModelParams(
        components=settings.lightfm_components,
        epochs=settings.lightfm_epochs,
        learning_rate=settings.lightfm_learning_rate,
        threads=settings.train_threads,
    )


def families(settings: Settings) -> tuple[str, ...]:
    if settings.model == "auto":
        return ("ease", "lightfm", "popularity")
    return (settings.model,)


class _Counted:
    """Pass events through once, counting them."""

    def __init__(self, events: Iterable[StoredEvent]) -> None:
        self._events = events
        self.count = 0

    def __iter__(self) -> Iterator[StoredEvent]:
        for event in self._events:
            self.count += 1
            yield event


def new_version() -> str:
    """Sortable by time, unique across trainers."""
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"


def train_once(
    settings: Settings,
    interaction_log: InteractionLog,
    state: FeedbackState,
) -> TrainingOutcome:
    """Train on everything logged so far; publish unless a /cleanup happened meanwhile."""
    started = time.perf_counter()
    epoch = state.epoch()
    read = _Counted(interaction_log.read())
    try:
        # Streamed, not listed: holding a million parsed events at once doubled the cycle's
        # peak memory, 2.2 -> 1.1 GB (bench/ab_train.py, docs/benchmarks.md).
        data = from_events(read)
        events = read.count
        if len(data) == 0:
            outcome = TrainingOutcome(False, None, "no interactions yet", 0.0, 0)
            TRAINING_RUNS.labels("skipped").inc()
            return outcome
        # The published model is not passed as a contender: it was trained on the very
        # ratings now held out for validation, so it would always win and freeze the model.
        # Every family is refitted on the same split instead; the best one is published.
        model, report = select_model(data, model_params(settings), families(settings))
        model = replace(model, version=new_version(), trained_at=time.time())
        if not state.publish_model(model, epoch, settings.models_kept):
            TRAINING_RUNS.labels("discarded").inc()
            return TrainingOutcome(
                False,
                model,
                "state was wiped during training",
                time.perf_counter() - started,
                events,
            )
    except Exception:
        TRAINING_RUNS.labels("failed").inc()
        raise
    seconds = time.perf_counter() - started
    TRAINING_RUNS.labels("published").inc()
    TRAINING_DURATION.observe(seconds)
    LAST_TRAINING_SUCCESS.set(time.time())
    record_model(model.version, model.family, model.metrics)
    log.info(
        "published model %s (%s) from %d events in %.2fs: %s",
        model.version,
        model.family,
        events,
        seconds,
        json.dumps(report.get("scores", {})),
    )
    return TrainingOutcome(True, model, str(report.get("reason", "")), seconds, events)
