"""POST /add_items: upsert catalogue items, in as many batches as needed; GET /items."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from redis.exceptions import RedisError

from services.api.deps import AdminDep, StoreDep
from services.api.schemas import AddItemsRequest, AddItemsResponse, ItemDetails, ItemsResponse
from services.common.events import MAX_ID_LENGTH
from services.common.openapi import error, invalid
from services.common.strict_json import StrictJSONRoute

router = APIRouter(tags=["catalogue"], route_class=StrictJSONRoute)

MAX_LOOKUP = 100


@router.post(
    "/add_items",
    response_model=AddItemsResponse,
    dependencies=[AdminDep],
    responses={
        401: error("RECSYS_ADMIN_TOKEN is set and X-Admin-Token is missing or wrong"),
        403: error("a cross-site browser request (admin calls come from servers)"),
        422: error("invalid items (nothing stored)"),
        503: error("Redis did not answer, or the process is overloaded (nothing stored)"),
    },
)
async def add_items(body: AddItemsRequest, store: StoreDep) -> AddItemsResponse:
    """Add or update catalogue items with their genres (and titles); idempotent, in as many
    batches as needed. Feedback may name items before they are added: it is kept and counts
    once they are in the catalogue."""
    try:
        added = await store.add_items(body.item_ids, body.genres, body.titles)
        total = await store.catalogue_size()
    except RedisError as error:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"redis: {error}") from error
    return AddItemsResponse(added=added, total=total)


@router.get(
    "/items",
    response_model=ItemsResponse,
    responses={
        422: error("no id, more than 100, or an empty or over-long id"),
        503: error("Redis did not answer, or the process is overloaded"),
    },
)
async def items(
    store: StoreDep,
    ids: Annotated[list[str], Query(alias="id", min_length=1, max_length=MAX_LOOKUP)],
) -> ItemsResponse:
    """Titles and genres of catalogue items (``?id=a&id=b``); unknown ids are left out."""
    if any(not item or len(item) > MAX_ID_LENGTH for item in ids):
        raise invalid(
            ("query", "id"), f"ids must have 1 to {MAX_ID_LENGTH} characters", "value_error"
        )
    try:
        found = await store.item_details(ids)
    except RedisError as error:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"redis: {error}") from error
    return ItemsResponse(items=[ItemDetails(item_id=i, title=t, genres=g) for i, t, g in found])
