"""Accepting one valid event: stamp the server time, publish with confirmation, count it.

Shared by the lean POST /interact path (services.collector.fast_path) and the FastAPI route
it falls back to, so both answer 200 under exactly the same guarantee.
"""

from __future__ import annotations

import time
from collections.abc import Collection

from pydantic import TypeAdapter

from services.common.broker import BrokerUnavailableError, Publisher
from services.common.events import InteractEvent
from services.common.metrics import EVENTS_PUBLISHED, EVENTS_REJECTED

# A TypeAdapter gives bytes in and bytes out (validate_json / dump_json): no str round trip.
EVENT_JSON: TypeAdapter[InteractEvent] = TypeAdapter(InteractEvent)
_REJECTED_BY_BROKER = EVENTS_REJECTED.labels("broker")


class UnknownActionError(ValueError):
    """The event names an action this instance is not configured for (a 422)."""


def check_actions(event: InteractEvent, known: Collection[str]) -> None:
    unknown = sorted(set(event.actions) - set(known))
    if unknown:
        raise UnknownActionError(
            f"unknown action {', '.join(map(repr, unknown))}: this instance accepts "
            f"{', '.join(sorted(known))} (RECSYS_FEEDBACK_TYPES)"
        )


async def accept(event: InteractEvent, publisher: Publisher, known: Collection[str]) -> str:
    """Return the broker's message id once it holds a persistent copy of ``event``.

    Raises :class:`UnknownActionError` for an action not in ``known`` (nothing published)
    and :class:`BrokerUnavailableError` (counted as rejected) when the broker did not
    confirm.
    """
    check_actions(event, known)
    if event.timestamp is None:
        # The event was validated for this request alone: stamp it in place, no model copy.
        event.timestamp = time.time()
    try:
        message_id = await publisher.publish(EVENT_JSON.dump_json(event))
    except BrokerUnavailableError:
        _REJECTED_BY_BROKER.inc()
        raise
    EVENTS_PUBLISHED.inc()
    return message_id
