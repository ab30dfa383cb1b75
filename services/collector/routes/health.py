"""GET /healthcheck of the collector: the broker must answer."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.common.broker import Publisher
from services.common.openapi import health_responses
from services.common.shared_check import SharedCheck

router = APIRouter(tags=["health"])

# The body and the status code of a health answer.
type Health = tuple[dict[str, object], int]


@router.get("/healthcheck", response_model=None, responses=health_responses())
async def healthcheck(request: Request) -> JSONResponse:
    """200 with the queue depth when the broker answers; 503 naming it when not. Probes
    arriving while a check runs share it (RECSYS_HEALTH_CACHE_SECONDS)."""
    shared: SharedCheck[Health] = request.app.state.health
    body, status_code = await shared.get()
    return JSONResponse(body, status_code=status_code)


def health_check(publisher: Publisher, max_age: float) -> SharedCheck[Health]:
    async def check() -> Health:
        try:
            depth = await publisher.queue_depth()
        except Exception as error:
            return {"status": "unavailable", "down": {"broker": repr(error)}}, 503
        return {"status": "ok", "queue_depth": depth}, 200

    return SharedCheck(check, max_age)
