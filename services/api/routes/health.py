"""GET /healthcheck and GET /model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse
from redis.asyncio import Redis

from services.api.deps import StoreDep
from services.common.broker import Publisher, open_publisher
from services.common.health_server import Check, Health
from services.common.openapi import error, health_responses
from services.common.settings import Settings
from services.common.shared_check import SharedCheck
from services.common.status import DEGRADING_NOTES
from services.core.recommender import serving_store
from services.core.serving_store import ServingStore

router = APIRouter(tags=["health"])


@router.get("/healthcheck", response_model=None, responses=health_responses())
async def healthcheck(request: Request) -> JSONResponse:
    """200 when Redis, the broker and the model store answer; 503 naming what is down.

    ``"status": "degraded"`` (still 200) with a ``degraded`` section naming the part and its
    error when the trainer reports one, e.g. an interaction log it cannot write (disk full):
    recommendations are served and accepted events wait safely in the queue, so taking the
    api out of service (the readiness probe follows this status code) would only add an
    outage. Alerting should watch ``status`` or ``recsys_ingest_storage_blocked``.

    Probes arriving together share one check, reused for RECSYS_HEALTH_CACHE_SECONDS.
    """
    shared: SharedCheck[Health] = request.app.state.health
    body, status_code = await shared.get()
    return JSONResponse(body, status_code=status_code)


def health_check(store: ServingStore, publisher: Publisher, max_age: float) -> SharedCheck[Health]:
    """The api's health check, shared by concurrent probes (see healthcheck)."""
    return SharedCheck(check_of(store, publisher), max_age)


def check_of(store: ServingStore, publisher: Publisher) -> Check:
    """The api's health check: Redis, the model store and the broker."""

    async def check() -> Health:
        down: dict[str, str] = {}
        body: dict[str, object] = {}
        degraded: dict[str, str] = {}
        try:
            await store.ping()
            info = await store.model_info()
            body["model_version"] = info.get("version") if info else None
            notes = await store.status_notes()
            if notes:
                body["notes"] = notes
            degraded = {DEGRADING_NOTES[k]: v for k, v in notes.items() if k in DEGRADING_NOTES}
        except Exception as error:
            down["redis"] = repr(error)
            down["model_store"] = "stored in redis"
        try:
            body["queue_depth"] = await publisher.queue_depth()
        except Exception as error:
            down["broker"] = repr(error)
        if down:
            return {"status": "unavailable", "down": down, **body}, 503
        if degraded:
            return {"status": "degraded", "degraded": degraded, **body}, 200
        return {"status": "ok", **body}, 200

    return check


@asynccontextmanager
async def own_health_check(settings: Settings) -> AsyncIterator[Check]:
    """The same check on connections of its own, for the probe listener's thread.

    Its own Redis client, not the serving pool: a flood can hold every pooled connection
    (redis-py refuses the next one), and a probe must not report Redis down for that.
    """
    redis = Redis.from_url(
        settings.redis_server_url,
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
    )
    # Not connected here: the first check connects (a broker that hangs must not hold up
    # the start-up; the serving publisher already warned about it).
    publisher = open_publisher(settings, max_inflight=1)
    try:
        yield check_of(serving_store(redis, settings), publisher)
    finally:
        await publisher.close()
        await redis.aclose()


@router.get(
    "/model",
    responses={
        404: error("no model published yet (before the first training)"),
        503: error("redis did not answer"),
    },
)
async def model(store: StoreDep) -> dict[str, object]:
    """The published model's version, family, training time and holdout metrics."""
    info = await store.model_info()
    if info is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no model published yet")
    return info
