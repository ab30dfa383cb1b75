"""GET /healthcheck and GET /model."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse

from services.api.deps import StoreDep
from services.common.broker import Publisher
from services.common.openapi import error, health_responses
from services.common.shared_check import SharedCheck
from services.common.status import DEGRADING_NOTES
from services.core.serving_store import ServingStore

router = APIRouter(tags=["health"])

# The body and the status code of a health answer.
type Health = tuple[dict[str, object], int]


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

    return SharedCheck(check, max_age)


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
