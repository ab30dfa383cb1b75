"""Training cycles: read the log, fit (and select) a model, publish it atomically."""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass, replace
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
from services.core.feedback import training_values
from services.trainer.carryover import LogSnapshot, PublishedNeighbours, Selection, SelectionRecord
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

    A fresh trainer (a Kubernetes Job running ``recsys train --once``) starts from what an
    earlier one left, under the same rules: the parsed log from the snapshot next to it
    (``log_snapshot``; only later lines are read), the selection from the record in Redis
    (``Keys.model_selection``) and the neighbours from the published model's blob. The
    record is written after each publish, only if the epoch is unchanged, and trusted only
    for the same epoch, the same log (its first line) and the same families and parameters.
    """

    def __init__(
        self, settings: Settings, interaction_log: InteractionLog, state: FeedbackState
    ) -> None:
        self.settings = settings
        self.log = interaction_log
        self.state = state
        self._snapshot = LogSnapshot(interaction_log)
        self._record = SelectionRecord(state)
        self._reset(None)

    def _reset(self, epoch: str | None) -> None:
        self._epoch = epoch
        self._cursor = LogCursor()
        self._store = InteractionStore(values=training_values(self.settings.feedback_types))
        self._selection: Selection | None = None
        self._neighbours: _KnownNeighbours | None = None
        self._published: PublishedNeighbours | None = None

    def _read(self, epoch: str, first_line: bytes) -> None:
        """Bring the interactions up to date with the log."""
        fresh = self._epoch is None
        if epoch != self._epoch:
            if self._epoch is not None:
                log.info("state epoch changed (a /cleanup): reading the log from the start")
            self._reset(epoch)
        if fresh:
            if self.settings.log_snapshot and (loaded := self._snapshot.load(first_line)):
                self._store, self._cursor = loaded
            self._selection, self._published = self._record.load(
                epoch, first_line, self._config(), families(self.settings)
            )
        try:
            added = self._store.add(self.log.read_new(self._cursor))
        except LogRewrittenError:
            log.info("the interaction log was truncated (a /cleanup): reading it from the start")
            self._reset(epoch)
            added = self._store.add(self.log.read_new(self._cursor))
        if added and self.settings.log_snapshot:
            self._snapshot.save(self._store, self._cursor, first_line)

    def _config(self) -> dict[str, Any]:
        """What a selection depends on besides the data: a change of it means selecting."""
        params = {k: v for k, v in asdict(model_params(self.settings)).items() if k != "threads"}
        config: dict[str, Any] = json.loads(
            json.dumps({"families": list(families(self.settings)), "params": params})
        )
        return config

    def _remember(self, model: ServingModel, epoch: str, first_line: bytes) -> None:
        """Record the selection and the published neighbours for the next fresh trainer."""
        known = self._neighbours
        neighbours = (
            PublishedNeighbours(known.family, known.likes, model.version)
            if known is not None and known.family == model.family
            else None
        )
        self._record.save(epoch, first_line, self._config(), self._selection, neighbours)

    def _needs_selection(self, interactions: int) -> bool:
        selected = self._selection
        if selected is None:
            return True
        if interactions >= selected.interactions * (1 + self.settings.reselect_growth):
            return True
        if interactions < selected.interactions:  # fewer than then: not the same data
            return True
        every = self.settings.reselect_every
        return every > 0 and selected.cycles >= every

    def _fresh(self, likes_then: int, likes_now: int) -> bool:
        """Neighbours computed on ``likes_then`` likes still serve ``likes_now``."""
        growth = self.settings.neighbours_refresh_growth
        return 0 < likes_now < likes_then * (1 + growth)

    def _reusable_neighbours(self, family: str, data: Interactions) -> Neighbours | None:
        """The last neighbours, if still fresh enough, with empty rows for items added since.

        Item indices only ever grow (``InteractionStore``), so old rows stay aligned; an
        item added since has no neighbours until the next refresh (its own factors still
        rank it, and the likes that trigger a refresh include its likes).
        """
        likes = int((data.values > 0).sum())
        published = self._published
        if (
            self._neighbours is None
            and published is not None
            and published.family == family
            and self._fresh(published.likes, likes)
        ):
            self._published = None
            reused = self._record.neighbours(published, data.item_ids)
            if reused is not None:
                self._neighbours = _KnownNeighbours(published.family, reused, published.likes)
        known = self._neighbours
        n_items = len(data.item_ids)
        if known is None or known.family != family or family not in REUSABLE_NEIGHBOURS:
            return None
        idx, weight = known.neighbours
        if idx.shape[0] > n_items or not self._fresh(known.likes, likes):
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
            self._selection = Selection(model.family, metrics, len(data)) if validated else None
        if reused is None:
            likes = int((data.values > 0).sum())
            neighbours = (model.neighbor_idx, model.neighbor_weight)
            self._neighbours = _KnownNeighbours(model.family, neighbours, likes)
        return model, reason

    def cycle(self) -> TrainingOutcome:
        """Train on everything logged so far; publish unless a /cleanup happened meanwhile."""
        started = time.perf_counter()
        # Epoch first, then the cleanup mark: a cycle that sees the epoch of a /cleanup and
        # no mark reads a log the ingester has already cut (the mark is set before the
        # epoch moves and lifted after the cut).
        epoch = self.state.epoch()
        if self.state.cleanup_pending():
            TRAINING_RUNS.labels("skipped").inc()
            return TrainingOutcome(False, None, "a /cleanup is waiting for the log cut", 0.0, 0)
        first_line = self.log.first_line()
        try:
            self._read(epoch, first_line)
            events = self._store.events
            if len(self._store) == 0:
                TRAINING_RUNS.labels("skipped").inc()
                return TrainingOutcome(False, None, "no interactions yet", 0.0, 0)
            model, reason = self._fit(self._store.interactions())
            model = replace(model, version=new_version(), trained_at=time.time())
            published = self._publish(model, epoch)
            if published:
                self._remember(model, epoch, first_line)
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
        record_model(model.version, model.family, model.metrics, model.trained_at)
        return True


def train_once(
    settings: Settings,
    interaction_log: InteractionLog,
    state: FeedbackState,
) -> TrainingOutcome:
    """One cycle of a fresh trainer (a trainer Job, a rebuild).

    It starts from what an earlier trainer left when that still holds (see ``Trainer``):
    otherwise it reads the whole log and selects the model family.
    """
    return Trainer(settings, interaction_log, state).cycle()
