"""GET /healthcheck and GET /model."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import JSONResponse

from services.api.deps import PublisherDep, StoreDep
from services.common.openapi import error, health_responses
from services.common.status import DEGRADING_NOTES

router = APIRouter(tags=["health"])


@router.get("/healthcheck", response_model=None, responses=health_responses())
async def healthcheck(store: StoreDep, publisher: PublisherDep) -> JSONResponse:
    """200 when Redis, the broker and the model store answer; 503 naming what is down.

    ``"status": "degraded"`` (still 200) with a ``degraded`` section naming the part and its
    error when the trainer reports one, e.g. an interaction log it cannot write (disk full):
    recommendations are served and accepted events wait safely in the queue, so taking the
    api out of service (the readiness probe follows this status code) would only add an
    outage. Alerting should watch ``status`` or ``recsys_ingest_storage_blocked``.
    """
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
        return JSONResponse({"status": "unavailable", "down": down, **body}, status_code=503)
    if degraded:
        return JSONResponse({"status": "degraded", "degraded": degraded, **body})
    return JSONResponse({"status": "ok", **body})


@router.get("/model", responses={404: error("no model published yet (before the first training)")})
async def model(store: StoreDep) -> dict[str, object]:
    """The published model's version, family, training time and holdout metrics."""
    info = await store.model_info()
    if info is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no model published yet")
    return info
