"""Accepting one valid event: stamp the server time, publish with confirmation, count it.

Shared by the lean POST /interact path (services.collector.fast_path) and the FastAPI route
it falls back to, so both answer 200 under exactly the same guarantee.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from pydantic import TypeAdapter

from services.common.broker import BrokerUnavailableError, Publisher
from services.common.events import InteractEvent
from services.common.metrics import EVENTS_PUBLISHED, EVENTS_REJECTED
from services.core.feedback import FeedbackType, Role

# A TypeAdapter gives bytes in and bytes out (validate_json / dump_json): no str round trip.
EVENT_JSON: TypeAdapter[InteractEvent] = TypeAdapter(InteractEvent)
_REJECTED_BY_BROKER = EVENTS_REJECTED.labels("broker")


class RefusedEventError(ValueError):
    """A well-formed event this instance refuses (a 422, nothing published)."""


class UnknownActionError(RefusedEventError):
    """The event names an action this instance is not configured for."""


class ConflictingActionsError(RefusedEventError):
    """The event says both that the user wants an item and that they do not."""


def check_actions(event: InteractEvent, types: Mapping[str, FeedbackType]) -> None:
    unknown = sorted(set(event.actions) - set(types))
    if unknown:
        raise UnknownActionError(
            f"unknown action {', '.join(map(repr, unknown))}: this instance accepts "
            f"{', '.join(sorted(types))} (RECSYS_FEEDBACK_TYPES)"
        )
    if len(set(event.item_ids)) == len(event.item_ids):
        return  # no item twice: nothing can conflict (the common case, checked cheaply)
    roles: dict[str, set[Role]] = {}
    for item, action in zip(event.item_ids, event.actions, strict=True):
        roles.setdefault(item, set()).add(types[action].role)
    conflicting = sorted(i for i, r in roles.items() if {Role.POSITIVE, Role.NEGATIVE} <= r)
    if conflicting:
        # Which one the user meant cannot be told: the event order is not a time order.
        raise ConflictingActionsError(
            f"items both liked and disliked in one event: {', '.join(map(repr, conflicting))}"
        )


async def accept(
    event: InteractEvent, publisher: Publisher, types: Mapping[str, FeedbackType]
) -> str:
    """Return the broker's message id once it holds a persistent copy of ``event``.

    Raises :class:`RefusedEventError` for an action not in ``types`` or a contradiction
    (nothing published)
    and :class:`BrokerUnavailableError` (counted as rejected) when the broker did not
    confirm.
    """
    check_actions(event, types)
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
