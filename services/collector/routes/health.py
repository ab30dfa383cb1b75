"""GET /healthcheck of the collector: the broker must answer."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from services.collector.deps import PublisherDep
from services.common.broker import BrokerUnavailableError

router = APIRouter(tags=["health"])


@router.get("/healthcheck")
async def healthcheck(publisher: PublisherDep) -> JSONResponse:
    try:
        depth = await publisher.queue_depth()
    except (BrokerUnavailableError, Exception) as error:
        return JSONResponse(
            {"status": "unavailable", "down": {"broker": repr(error)}}, status_code=503
        )
    return JSONResponse({"status": "ok", "queue_depth": depth})
