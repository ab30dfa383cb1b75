"""GET /recs/{user_id}: what this user should see next."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status
from redis.exceptions import RedisError

from services.api.deps import RecommenderDep, SettingsDep
from services.api.schemas import ExplainedRecsResponse, RecsResponse
from services.common.events import MAX_ID_LENGTH, has_control_characters

router = APIRouter(tags=["recommendations"])


# ``:path`` because ids may contain "/" (/interact accepts them): a client sends it as %2F,
# the server decodes it, and a plain {user_id} would then answer 404 for that user forever.
@router.get("/recs/{user_id:path}", response_model=RecsResponse | ExplainedRecsResponse)
async def recs(
    user_id: Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)],
    recommender: RecommenderDep,
    settings: SettingsDep,
    k: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    explain: bool = False,
) -> RecsResponse | ExplainedRecsResponse:
    """k distinct unseen, unrated items (10 by default); ``explain`` adds their sources."""
    if k is not None and k > settings.max_k:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"k must be <= {settings.max_k}")
    if has_control_characters(user_id):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "user_id has control characters")
    try:
        if explain:
            # Sources and the model version come with a fresh ranking.
            result = await recommender.rank(user_id, k or settings.default_k)
        else:
            result = await recommender.recommend(user_id, k or settings.default_k)
    except RedisError as error:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"redis: {error}") from error
    if explain:
        return ExplainedRecsResponse(
            item_ids=result.item_ids, sources=result.sources, model_version=result.model_version
        )
    return RecsResponse(item_ids=result.item_ids)
