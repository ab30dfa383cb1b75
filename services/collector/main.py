"""Collector: accepts feedback and answers 200 only once the broker confirmed it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from services.collector.fast_path import PATH, InteractFastPath
from services.collector.routes import health, interact
from services.common.broker import open_publisher
from services.common.health_server import probe_listener
from services.common.http import install_common, telemetry
from services.common.openapi import describe_errors
from services.common.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        publisher = open_publisher(settings, max_inflight=settings.max_inflight_publishes)
        await publisher.connect()
        app.state.publisher = publisher
        app.state.health = health.health_check(publisher, settings.health_cache_seconds)
        try:
            async with probe_listener(
                settings.host,
                settings.collector_health_port,
                lambda: health.own_health_check(settings),
                refresh=settings.health_probe_refresh_seconds,
                stall_after=settings.health_loop_stall_seconds,
            ):
                yield
        finally:
            await publisher.close()

    # /docs and /redoc from assets in the fastapi-offline wheel: no CDN, works offline.
    app = FastAPIOffline(
        title="recsys collector",
        version="0.1.0",
        lifespan=lifespan,
        telemetry=telemetry(settings),
    )
    app.state.settings = settings
    app.include_router(interact.router)
    app.include_router(health.router)
    [route] = [r for r in interact.router.routes if getattr(r, "path", None) == PATH]
    install_common(
        app, service="collector", settings=settings, fast_lane=InteractFastPath(route=route)
    )
    describe_errors(app)
    _document_actions(app, sorted(settings.feedback_types))
    return app


def _document_actions(app: FastAPI, actions: list[str]) -> None:
    """The OpenAPI document names the actions this instance accepts (a setting, so the
    event model alone cannot)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            event = schema["components"]["schemas"]["InteractEvent"]
            event["properties"]["actions"]["items"]["enum"] = actions
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
