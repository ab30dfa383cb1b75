"""/cleanup: wipe every piece of this instance's state."""

from __future__ import annotations

import contextlib
import logging
import uuid

from fastapi import APIRouter, HTTPException, status
from redis.exceptions import RedisError

from services.api.deps import AdminDep, CacheDep, PublisherDep, StoreDep
from services.common.broker import (
    CLEANUP_TOKEN_HEADER,
    CONTROL_CLEANUP,
    CONTROL_HEADER,
    BrokerUnavailableError,
)
from services.common.openapi import error

router = APIRouter(
    tags=["admin"],
    dependencies=[AdminDep],
    responses={
        401: error("RECSYS_ADMIN_TOKEN is set and X-Admin-Token is missing or wrong"),
        403: error("a cross-site browser request (admin calls come from servers)"),
        503: error("Redis or the broker did not answer (nothing wiped), or overloaded"),
    },
)
log = logging.getLogger(__name__)


# Two routes, not one api_route with two methods: FastAPI would give both operations the
# same operationId, an invalid OpenAPI document for client generators and fuzzers.
@router.get("/cleanup", operation_id="cleanup_get")
@router.post("/cleanup", operation_id="cleanup")
async def cleanup(store: StoreDep, cache: CacheDep, publisher: PublisherDep) -> dict[str, object]:
    """Purge the queue, tell the trainer to drop its log, delete every Redis key."""
    token = uuid.uuid4().hex
    try:
        # Before the control message: a cycle that starts after the wipe below must not
        # train on the log before the ingester has cut it.
        await store.begin_cleanup(token)
    except RedisError as error:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"redis: {error}") from error
    try:
        purged = await publisher.purge()
        # Queued behind nothing: the trainer truncates its log when it reads this.
        await publisher.publish(
            b"{}", headers={CONTROL_HEADER: CONTROL_CLEANUP, CLEANUP_TOKEN_HEADER: token}
        )
    except Exception as error:
        with contextlib.suppress(RedisError):
            await store.abort_cleanup(token)
        reason = str(error) if isinstance(error, BrokerUnavailableError) else f"broker: {error!r}"
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, reason) from error
    try:
        deleted = await store.wipe()
    except RedisError as error:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"redis: {error}") from error
    cache.invalidate()
    log.info("cleanup: %d queued messages purged, %d keys deleted", purged, deleted)
    return {"status": "ok", "purged_messages": purged, "deleted_keys": deleted}
