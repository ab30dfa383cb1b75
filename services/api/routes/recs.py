"""GET /recs/{user_id}: what this user should see next."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status
from redis.exceptions import RedisError
from starlette.convertors import Convertor, register_url_convertor

from services.api.deps import RecommenderDep, SettingsDep
from services.api.schemas import ExplainedRecsResponse, RecsResponse
from services.common.events import MAX_ID_LENGTH, refused_id
from services.common.openapi import error, invalid

router = APIRouter(tags=["recommendations"])


class AnyText(Convertor[str]):
    """Like Starlette's ``path`` convertor, but a newline matches too: an id with a control
    character must reach the route and get its 422, not fall through to a 404."""

    regex = r"[\s\S]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anything", AnyText())


# ``:anything`` because ids may contain "/" (/interact accepts them): a client sends it as %2F,
# the server decodes it, and a plain {user_id} would then answer 404 for that user forever.
@router.get(
    "/recs/{user_id:anything}",
    response_model=RecsResponse | ExplainedRecsResponse,
    responses={
        422: error("k over RECSYS_MAX_K, or a blank user id or one with control characters"),
        503: error("Redis did not answer, or the process is overloaded: retry later"),
    },
)
async def recs(
    user_id: Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)],
    recommender: RecommenderDep,
    settings: SettingsDep,
    k: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    explain: bool = False,
) -> RecsResponse | ExplainedRecsResponse:
    """k distinct items the user has neither rated nor been shown (10 by default).

    ``explain=true`` adds each item's source (model, popular, exploration) and the model
    version. Unknown users are normal: they get popular items and exploration.
    """
    if k is not None and k > settings.max_k:
        raise invalid(
            ("query", "k"),
            f"Input should be less than or equal to {settings.max_k} (RECSYS_MAX_K)",
            "less_than_equal",
        )
    problem = refused_id(user_id)
    if problem:
        raise invalid(("path", "user_id"), problem, "value_error")
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
