"""Request dependencies of the api."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.api.recommender import Recommender
from services.api.serving_state import ServingStateCache
from services.api.store import ServingStore
from services.common.admin import AdminTokenHeader, check_admin_token
from services.common.broker import Publisher
from services.common.settings import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_store(request: Request) -> ServingStore:
    store: ServingStore = request.app.state.store
    return store


def get_cache(request: Request) -> ServingStateCache:
    cache: ServingStateCache = request.app.state.cache
    return cache


def get_recommender(request: Request) -> Recommender:
    recommender: Recommender = request.app.state.recommender
    return recommender


def get_publisher(request: Request) -> Publisher:
    publisher: Publisher = request.app.state.publisher
    return publisher


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[ServingStore, Depends(get_store)]
CacheDep = Annotated[ServingStateCache, Depends(get_cache)]
RecommenderDep = Annotated[Recommender, Depends(get_recommender)]
PublisherDep = Annotated[Publisher, Depends(get_publisher)]


def require_admin(settings: SettingsDep, token: str | None = AdminTokenHeader) -> None:
    check_admin_token(settings.admin_token, token)


AdminDep = Depends(require_admin)
