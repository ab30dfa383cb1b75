"""Accepting one valid event: stamp the server time, publish with confirmation, count it.

Shared by the lean POST /interact path (services.collector.fast_path) and the FastAPI route
it falls back to, so both answer 200 under exactly the same guarantee.
"""

from __future__ import annotations

import time

from pydantic import TypeAdapter

from services.common.broker import BrokerUnavailableError, Publisher
from services.common.events import InteractEvent
from services.common.metrics import EVENTS_PUBLISHED, EVENTS_REJECTED

# A TypeAdapter gives bytes in and bytes out (validate_json / dump_json): no str round trip.
EVENT_JSON: TypeAdapter[InteractEvent] = TypeAdapter(InteractEvent)
_REJECTED_BY_BROKER = EVENTS_REJECTED.labels("broker")


async def accept(event: InteractEvent, publisher: Publisher) -> str:
    """Return the broker's message id once it holds a persistent copy of ``event``.

    Raises :class:`BrokerUnavailableError` (counted as rejected) when it does not.
    """
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
