"""/cleanup: wipe every piece of this instance's state."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, status
from redis.exceptions import RedisError

from services.api.deps import AdminDep, CacheDep, PublisherDep, StoreDep
from services.common.broker import CONTROL_CLEANUP, CONTROL_HEADER, BrokerUnavailableError

router = APIRouter(tags=["admin"], dependencies=[AdminDep])
log = logging.getLogger(__name__)


# Two routes, not one api_route with two methods: FastAPI would give both operations the
# same operationId, an invalid OpenAPI document for client generators and fuzzers.
@router.get("/cleanup", operation_id="cleanup_get")
@router.post("/cleanup", operation_id="cleanup")
async def cleanup(store: StoreDep, cache: CacheDep, publisher: PublisherDep) -> dict[str, object]:
    """Purge the queue, tell the trainer to drop its log, delete every Redis key."""
    try:
        purged = await publisher.purge()
        # Queued behind nothing: the trainer truncates its log when it reads this.
        await publisher.publish(b"{}", headers={CONTROL_HEADER: CONTROL_CLEANUP})
    except BrokerUnavailableError as error:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(error)) from error
    except Exception as error:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"broker: {error!r}") from error
    try:
        deleted = await store.wipe()
    except RedisError as error:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"redis: {error}") from error
    cache.invalidate()
    log.info("cleanup: %d queued messages purged, %d keys deleted", purged, deleted)
    return {"status": "ok", "purged_messages": purged, "deleted_keys": deleted}
