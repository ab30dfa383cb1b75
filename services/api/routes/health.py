"""GET /healthcheck and GET /model."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import JSONResponse

from services.api.deps import PublisherDep, StoreDep

router = APIRouter(tags=["health"])


@router.get("/healthcheck")
async def healthcheck(store: StoreDep, publisher: PublisherDep) -> JSONResponse:
    """200 when Redis, the broker and the model store answer; 503 naming what is down."""
    down: dict[str, str] = {}
    body: dict[str, object] = {}
    try:
        await store.ping()
        info = await store.model_info()
        body["model_version"] = info.get("version") if info else None
        notes = await store.status_notes()
        if notes:
            body["notes"] = notes
    except Exception as error:
        down["redis"] = repr(error)
        down["model_store"] = "stored in redis"
    try:
        body["queue_depth"] = await publisher.queue_depth()
    except Exception as error:
        down["broker"] = repr(error)
    if down:
        return JSONResponse({"status": "unavailable", "down": down, **body}, status_code=503)
    return JSONResponse({"status": "ok", **body})


@router.get("/model")
async def model(store: StoreDep) -> dict[str, object]:
    """The published model's version, family, training time and holdout metrics."""
    info = await store.model_info()
    if info is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no model published yet")
    return info
