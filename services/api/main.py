"""Api: catalogue, recommendations, cleanup, health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from redis.asyncio import Redis

from services.api.prefetched_recs import PrefetchedRecs
from services.api.routes import admin, catalogue, demo, health, recs
from services.common.broker import open_publisher
from services.common.health_server import probe_listener
from services.common.http import install_common, telemetry
from services.common.openapi import describe_errors
from services.common.settings import Settings, get_settings
from services.core.live_counts import ItemStatsCache
from services.core.recommender import bandit_policy, build_recommender, serving_store
from services.core.serving_state import ServingStateCache

# Redis connections beyond one per request slot: background refreshes, the health check
# of the serving port (exempt from the request limit, one at a time), batched scripts.
_SPARE_REDIS_CONNECTIONS = 32


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = Redis.from_url(
            settings.redis_server_url,
            socket_timeout=settings.redis_timeout,
            socket_connect_timeout=settings.redis_timeout,
            health_check_interval=30,
            # A request holds at most one connection at a time (concurrent Lua calls share
            # one, services/core/batched_script.py), so this many never run out; redis-py's
            # default, 100, refused the 101st at once ("Too many connections": 503s for
            # /recs, and a /healthcheck reporting Redis down, under 600 concurrent /recs).
            max_connections=settings.max_concurrent_requests + _SPARE_REDIS_CONNECTIONS,
        )
        store = serving_store(redis, settings)
        cache = ServingStateCache(store)
        counts = ItemStatsCache(store, settings.live_counts_max_age, bandit_policy(settings))
        publisher = open_publisher(settings, max_inflight=64)
        await publisher.connect()
        app.state.store = store
        app.state.cache = cache
        app.state.counts = counts
        app.state.publisher = publisher
        app.state.health = health.health_check(store, publisher, settings.health_cache_seconds)
        app.state.recommender = build_recommender(
            store, cache, counts, settings, settings.prefetch_pages
        )
        try:
            async with probe_listener(
                settings.host,
                settings.api_health_port,
                lambda: health.own_health_check(settings),
                refresh=settings.health_probe_refresh_seconds,
                stall_after=settings.health_loop_stall_seconds,
            ):
                yield
        finally:
            await publisher.close()
            await redis.aclose()

    # /docs and /redoc from assets in the fastapi-offline wheel: no CDN, works offline.
    app = FastAPIOffline(
        title="recsys api",
        version="0.1.0",
        lifespan=lifespan,
        telemetry=telemetry(settings),
    )
    app.state.settings = settings
    install_common(
        app,
        service="api",
        settings=settings,
        fast_lane=PrefetchedRecs(default_k=settings.default_k, max_k=settings.max_k),
    )
    for module in (recs, catalogue, admin, health, demo):
        app.include_router(module.router)
    describe_errors(app)
    return app
