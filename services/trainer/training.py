"""Training cycles: read the log, fit (and select) a model, publish it atomically."""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from services.common.metrics import (
    LAST_TRAINING_SUCCESS,
    TRAINING_DURATION,
    TRAINING_RUNS,
    record_model,
)
from services.common.serving_model import ServingModel
from services.common.settings import Settings
from services.trainer.dataset import Interactions, InteractionStore
from services.trainer.feedback_state import FeedbackState
from services.trainer.interaction_log import InteractionLog, LogCursor, LogRewrittenError
from services.trainer.models import REUSABLE_NEIGHBOURS, ModelParams, Neighbours, fit_model
from services.trainer.models.base import empty_neighbours
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


def new_version() -> str:
    """Sortable by time, unique across trainers."""
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"


@dataclass
class _Selection:
    """The last validated choice of family, kept so later cycles fit only that family."""

    family: str
    metrics: dict[str, float]
    interactions: int
    cycles: int = 0


@dataclass
class _KnownNeighbours:
    """Item neighbours of the last model, with what they were computed from."""

    family: str
    neighbours: Neighbours
    likes: int


class Trainer:
    """Training cycles of one trainer process: read the log, fit, publish.

    Kept between cycles, so a steady-state cycle costs about one fit of the chosen family:
    - the parsed interactions: each cycle reads only the log lines appended since the last
      one (a /cleanup, seen as a new epoch or as a rewritten log, starts again from empty);
    - the last model selection (``select_model``: a validation fit of each family, then
      the winner refitted): repeated only when the data grew by ``reselect_growth`` or
      after ``reselect_every`` cycles; the cycles between fit the chosen family once and
      carry its validation metrics;
    - the item neighbours of LightFM and popularity models, recomputed when the likes grew
      by ``neighbours_refresh_growth`` (items added meanwhile get empty rows until then).
    """

    def __init__(
        self, settings: Settings, interaction_log: InteractionLog, state: FeedbackState
    ) -> None:
        self.settings = settings
        self.log = interaction_log
        self.state = state
        self._reset(None)

    def _reset(self, epoch: str | None) -> None:
        self._epoch = epoch
        self._cursor = LogCursor()
        self._store = InteractionStore()
        self._selection: _Selection | None = None
        self._neighbours: _KnownNeighbours | None = None

    def _read(self, epoch: str) -> None:
        """Bring the interactions up to date with the log."""
        if epoch != self._epoch:
            if self._epoch is not None:
                log.info("state epoch changed (a /cleanup): reading the log from the start")
            self._reset(epoch)
        try:
            self._store.add(self.log.read_new(self._cursor))
        except LogRewrittenError:
            log.info("the interaction log was truncated (a /cleanup): reading it from the start")
            self._reset(epoch)
            self._store.add(self.log.read_new(self._cursor))

    def _needs_selection(self, interactions: int) -> bool:
        selected = self._selection
        if selected is None:
            return True
        if interactions >= selected.interactions * (1 + self.settings.reselect_growth):
            return True
        every = self.settings.reselect_every
        return every > 0 and selected.cycles >= every

    def _reusable_neighbours(self, family: str, data: Interactions) -> Neighbours | None:
        """The last neighbours, if still fresh enough, with empty rows for items added since.

        Item indices only ever grow (``InteractionStore``), so old rows stay aligned; an
        item added since has no neighbours until the next refresh (its own factors still
        rank it, and the likes that trigger a refresh include its likes).
        """
        known = self._neighbours
        n_items = len(data.item_ids)
        if known is None or known.family != family or family not in REUSABLE_NEIGHBOURS:
            return None
        idx, weight = known.neighbours
        if idx.shape[0] > n_items:
            return None
        likes = int((data.values > 0).sum())
        if likes == 0 or likes >= known.likes * (1 + self.settings.neighbours_refresh_growth):
            return None
        if idx.shape[0] < n_items:
            pad_idx, pad_weight = empty_neighbours(n_items - idx.shape[0], idx.shape[1])
            idx, weight = np.concatenate([idx, pad_idx]), np.concatenate([weight, pad_weight])
            self._neighbours = _KnownNeighbours(family, (idx, weight), known.likes)
        return idx, weight

    def _fit(self, data: Interactions) -> tuple[ServingModel, str]:
        params = model_params(self.settings)
        selected = self._selection
        reused: Neighbours | None = None
        if selected is not None and not self._needs_selection(len(data)):
            selected.cycles += 1
            reused = self._reusable_neighbours(selected.family, data)
            model = fit_model(selected.family, data, params, neighbours=reused)
            model = replace(model, metrics={**model.metrics, **selected.metrics})
            reason = f"{selected.family}, as selected {selected.cycles} cycle(s) ago"
            if reused is not None:
                reason += ", item neighbours reused"
        else:
            # The published model is not passed as a contender: it was trained on the very
            # ratings now held out for validation, so it would always win and freeze the
            # model. Every family is refitted on the same split instead; the best one is
            # published.
            model, report = select_model(data, params, families(self.settings))
            reason = str(report.get("reason", ""))
            log.info("validation scores: %s", json.dumps(report.get("scores", {})))
            # Only a real choice is kept: with too little data to validate, or a fallback to
            # popularity, the next cycle selects again.
            validated = bool(report.get("scores")) and model.family == report.get("chosen")
            metrics = {k: v for k, v in model.metrics.items() if k != "fit_seconds"}
            self._selection = _Selection(model.family, metrics, len(data)) if validated else None
        if reused is None:
            likes = int((data.values > 0).sum())
            neighbours = (model.neighbor_idx, model.neighbor_weight)
            self._neighbours = _KnownNeighbours(model.family, neighbours, likes)
        return model, reason

    def cycle(self) -> TrainingOutcome:
        """Train on everything logged so far; publish unless a /cleanup happened meanwhile."""
        started = time.perf_counter()
        epoch = self.state.epoch()
        try:
            self._read(epoch)
            events = self._store.events
            if len(self._store) == 0:
                TRAINING_RUNS.labels("skipped").inc()
                return TrainingOutcome(False, None, "no interactions yet", 0.0, 0)
            model, reason = self._fit(self._store.interactions())
            model = replace(model, version=new_version(), trained_at=time.time())
            published = self._publish(model, epoch)
        except Exception:
            TRAINING_RUNS.labels("failed").inc()
            raise
        seconds = time.perf_counter() - started
        if not published:
            TRAINING_RUNS.labels("discarded").inc()
            return TrainingOutcome(False, model, "state was wiped during training", seconds, events)
        TRAINING_RUNS.labels("published").inc()
        TRAINING_DURATION.observe(seconds)
        LAST_TRAINING_SUCCESS.set(time.time())
        log.info(
            "published model %s (%s) from %d events in %.2fs: %s",
            model.version,
            model.family,
            events,
            seconds,
            reason,
        )
        return TrainingOutcome(True, model, reason, seconds, events)

    def _publish(self, model: ServingModel, epoch: str) -> bool:
        """The one place a model goes live: atomic, refused when the epoch moved on."""
        if not self.state.publish_model(model, epoch, self.settings.models_kept):
            return False
        record_model(model.version, model.family, model.metrics)
        return True


def train_once(
    settings: Settings,
    interaction_log: InteractionLog,
    state: FeedbackState,
) -> TrainingOutcome:
    """One cycle of a fresh trainer (a trainer Job, a rebuild): reads the whole log, selects."""
    return Trainer(settings, interaction_log, state).cycle()
