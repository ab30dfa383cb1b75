"""POST /add_items: upsert catalogue items, in as many batches as needed."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from redis.exceptions import RedisError

from services.api.deps import AdminDep, StoreDep
from services.api.schemas import AddItemsRequest, AddItemsResponse

router = APIRouter(tags=["catalogue"], dependencies=[AdminDep])


@router.post("/add_items", response_model=AddItemsResponse)
async def add_items(body: AddItemsRequest, store: StoreDep) -> AddItemsResponse:
    try:
        added = await store.add_items(body.item_ids, body.genres)
        total = await store.catalogue_size()
    except RedisError as error:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"redis: {error}") from error
    return AddItemsResponse(added=added, total=total)
