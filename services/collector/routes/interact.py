"""POST /interact: validate, stamp the time, publish with confirmation."""

from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException, status

from services.collector.deps import PublisherDep
from services.common.broker import BrokerUnavailableError
from services.common.events import InteractEvent
from services.common.metrics import EVENTS_PUBLISHED, EVENTS_REJECTED

router = APIRouter(tags=["feedback"])


@router.post(
    "/interact",
    responses={
        422: {"description": "invalid event (nothing stored)"},
        503: {"description": "the broker did not confirm (nothing stored)"},
    },
)
async def interact(event: InteractEvent, publisher: PublisherDep) -> dict[str, str]:
    """Accept likes/dislikes; 200 means the broker holds a persistent copy."""
    if event.timestamp is None:
        event = event.model_copy(update={"timestamp": time.time()})
    try:
        message_id = await publisher.publish(event.model_dump_json().encode())
    except BrokerUnavailableError as error:
        EVENTS_REJECTED.labels("broker").inc()
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(error)) from error
    EVENTS_PUBLISHED.inc()
    return {"status": "ok", "event_id": message_id}
