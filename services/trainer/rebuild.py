"""``recsys rebuild``: restore the serving state in Redis from the durable interaction log.

Redis holds derived state only: users' ratings (replayed here from the log), the model
(retrained here from the log), impressions (lost; users may see items again) and the
catalogue. The catalogue is not in the log: the operator re-sends it with POST /add_items,
which is idempotent. Safe to run while the ingester runs: ratings are applied with the
latest-wins script, so replaying old events never overrides newer ones.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from services.common.events import StoredEvent
from services.common.settings import Settings
from services.trainer.feedback_state import FeedbackState
from services.trainer.interaction_log import InteractionLog
from services.trainer.training import train_once

log = logging.getLogger(__name__)

STATUS_COMPONENT = "rebuild"
BATCH = 2000


@dataclass(frozen=True)
class RebuildOutcome:
    events: int
    users: int
    model_published: bool
    catalogue_items: int
    seconds: float


def rebuild(
    settings: Settings,
    interaction_log: InteractionLog,
    state: FeedbackState,
    *,
    train: bool = True,
) -> RebuildOutcome:
    """Replay every logged event into Redis, then (optionally) train and publish a model.

    While it runs, the ``rebuild`` status note says how far it got; /healthcheck shows it.
    """
    started = time.perf_counter()
    total = sum(1 for _ in interaction_log.read())
    state.set_status(STATUS_COMPONENT, f"replaying ratings from the log: 0/{total} events")
    users: set[str] = set()
    done = 0
    try:
        batch: list[StoredEvent] = []
        for event in interaction_log.read():
            batch.append(event)
            users.add(event.user_id)
            if len(batch) >= BATCH:
                state.apply(batch)
                done += len(batch)
                batch = []
                note = f"replaying ratings from the log: {done}/{total} events"
                state.set_status(STATUS_COMPONENT, note)
                log.info("rebuild: %s", note)
        state.apply(batch)
        done += len(batch)
        log.info("rebuild: %d events of %d users replayed", done, len(users))
        published = False
        if train and done:
            state.set_status(STATUS_COMPONENT, f"training a model on {done} events")
            outcome = train_once(settings, interaction_log, state)
            published = outcome.published
            log.info("rebuild: training outcome %s", outcome.summary())
    finally:
        state.set_status(STATUS_COMPONENT, None)
    catalogue_items = len(state.catalogue_ids())
    if catalogue_items == 0:
        log.warning("rebuild: the catalogue is empty; re-send it with POST /add_items")
    return RebuildOutcome(
        events=done,
        users=len(users),
        model_published=published,
        catalogue_items=catalogue_items,
        seconds=time.perf_counter() - started,
    )
