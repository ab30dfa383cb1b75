"""GET /healthcheck of the collector: the broker must answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.common.broker import Publisher, open_publisher
from services.common.health_server import Check, Health
from services.common.openapi import health_responses
from services.common.settings import Settings
from services.common.shared_check import SharedCheck

router = APIRouter(tags=["health"])


@router.get("/healthcheck", response_model=None, responses=health_responses())
async def healthcheck(request: Request) -> JSONResponse:
    """200 with the queue depth when the broker answers; 503 naming it when not. Probes
    arriving while a check runs share it (RECSYS_HEALTH_CACHE_SECONDS)."""
    shared: SharedCheck[Health] = request.app.state.health
    body, status_code = await shared.get()
    return JSONResponse(body, status_code=status_code)


def health_check(publisher: Publisher, max_age: float) -> SharedCheck[Health]:
    """The collector's health check, shared by concurrent probes (see healthcheck)."""
    return SharedCheck(check_of(publisher), max_age)


def check_of(publisher: Publisher) -> Check:
    """The collector's health check: the broker must answer."""

    async def check() -> Health:
        try:
            depth = await publisher.queue_depth()
        except Exception as error:
            return {"status": "unavailable", "down": {"broker": repr(error)}}, 503
        return {"status": "ok", "queue_depth": depth}, 200

    return check


@asynccontextmanager
async def own_health_check(settings: Settings) -> AsyncIterator[Check]:
    """The same check on a broker connection of its own, for the probe listener's thread
    (the serving connection's channel is busy with a flood's publishes)."""
    # Not connected here: the first check connects (a broker that hangs must not hold up
    # the start-up; the serving publisher already warned about it).
    publisher = open_publisher(settings, max_inflight=1)
    try:
        yield check_of(publisher)
    finally:
        await publisher.close()
