"""POST /interact: validate, stamp the time, publish with confirmation.

The common case (``Content-Type: application/json`` and a valid event) is answered by
services.collector.fast_path before FastAPI routes the request; this route answers
everything else (other JSON content types, invalid bodies) and documents the endpoint in
the OpenAPI schema.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status

from services.collector.accept import RefusedEventError, accept
from services.collector.deps import PublisherDep
from services.common.broker import BrokerUnavailableError
from services.common.events import InteractEvent
from services.common.openapi import error, invalid
from services.common.strict_json import StrictJSONRoute

router = APIRouter(tags=["feedback"], route_class=StrictJSONRoute)


@router.post(
    "/interact",
    responses={
        422: error(
            "invalid event (nothing stored): a malformed field, an unknown action, a blank "
            "user id, or one item both liked and disliked"
        ),
        503: error("the broker did not confirm, or the process is overloaded (nothing stored)"),
    },
)
async def interact(
    event: InteractEvent, publisher: PublisherDep, request: Request
) -> dict[str, str]:
    """Accept likes/dislikes (the configured feedback types); 200 means the broker holds a
    persistent copy."""
    try:
        message_id = await accept(event, publisher, request.app.state.settings.feedback_types)
    except RefusedEventError as error:
        raise invalid(("body", "actions"), str(error), "value_error") from error
    except BrokerUnavailableError as error:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(error)) from error
    return {"status": "ok", "event_id": message_id}
