"""Rank the next pages of the most recently active users ahead of their next visit.

Run by the trainer after it publishes a model (and as ``recsys prefetch``), so returning
users' first request pops a list ranked with the newest model instead of ranking inline.
Uses the api's own Recommender: the lists are exactly what /recs would have ranked.
"""

from __future__ import annotations

import asyncio
import logging
import time

from redis.asyncio import Redis

from services.common.settings import Settings
from services.core.live_counts import ItemStatsCache
from services.core.recommender import bandit_policy, build_recommender, serving_store
from services.core.serving_state import ServingStateCache

log = logging.getLogger(__name__)


async def prefetch_recent(settings: Settings, users: int, budget_seconds: float) -> int:
    """Prefetch the pages of up to ``users`` most recently active users; returns how many
    users got a list. Stops when the time budget is spent (the rest rank on their visit)."""
    redis = Redis.from_url(
        settings.redis_server_url,
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
    )
    try:
        store = serving_store(redis, settings)
        recommender = build_recommender(
            store,
            ServingStateCache(store),
            # A batch over many users: the counts need not be re-read twice a second.
            ItemStatsCache(store, max(settings.live_counts_max_age, 5.0), bandit_policy(settings)),
            settings,
            settings.prefetch_pages_ahead,
        )
        user_ids = await store.recent_users(users)
        started = time.monotonic()
        done = 0
        for user_id in user_ids:
            if time.monotonic() - started > budget_seconds:
                log.info("prefetch budget spent after %d of %d users", done, len(user_ids))
                break
            if await recommender.prefetch(user_id, settings.default_k, settings.prefetch_ahead_ttl):
                done += 1
            if done and done % 10_000 == 0:
                log.info("prefetched %d of %d users", done, len(user_ids))
        log.info("prefetched the next pages of %d users in %.1fs", done, time.monotonic() - started)
        return done
    finally:
        await redis.aclose()


def run_prefetch(settings: Settings, users: int, budget_seconds: float) -> int:
    return asyncio.run(prefetch_recent(settings, users, budget_seconds))
