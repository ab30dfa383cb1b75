"""GET /healthcheck of the collector: the broker must answer."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from services.collector.deps import PublisherDep
from services.common.broker import BrokerUnavailableError
from services.common.openapi import health_responses

router = APIRouter(tags=["health"])


@router.get("/healthcheck", response_model=None, responses=health_responses())
async def healthcheck(publisher: PublisherDep) -> JSONResponse:
    """200 with the queue depth when the broker answers; 503 naming it when not."""
    try:
        depth = await publisher.queue_depth()
    except (BrokerUnavailableError, Exception) as error:
        return JSONResponse(
            {"status": "unavailable", "down": {"broker": repr(error)}}, status_code=503
        )
    return JSONResponse({"status": "ok", "queue_depth": depth})
