"""Request dependencies of the api (``async def``: a plain ``def`` costs a thread hop each)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.common.admin import AdminTokenHeader, check_admin_token, check_not_cross_site
from services.common.broker import Publisher
from services.common.settings import Settings
from services.core.recommender import Recommender
from services.core.serving_state import ServingStateCache
from services.core.serving_store import ServingStore


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_store(request: Request) -> ServingStore:
    store: ServingStore = request.app.state.store
    return store


async def get_cache(request: Request) -> ServingStateCache:
    cache: ServingStateCache = request.app.state.cache
    return cache


async def get_recommender(request: Request) -> Recommender:
    recommender: Recommender = request.app.state.recommender
    return recommender


async def get_publisher(request: Request) -> Publisher:
    publisher: Publisher = request.app.state.publisher
    return publisher


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[ServingStore, Depends(get_store)]
CacheDep = Annotated[ServingStateCache, Depends(get_cache)]
RecommenderDep = Annotated[Recommender, Depends(get_recommender)]
PublisherDep = Annotated[Publisher, Depends(get_publisher)]


async def require_admin(
    request: Request, settings: SettingsDep, token: str | None = AdminTokenHeader
) -> None:
    headers = request.headers
    check_not_cross_site(
        headers.get("sec-fetch-site"), headers.get("origin"), settings.cors_origin_list
    )
    check_admin_token(settings.admin_token, token)


AdminDep = Depends(require_admin)
