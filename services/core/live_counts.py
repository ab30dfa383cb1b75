"""The bandit's evidence as one api replica sees it: Redis counts, at most a moment old.

Every replica reads the same counters (the ingester and every replica's impressions update
them atomically in Redis), so replicas agree within ``max_age``. Reading them costs one
pipelined round trip of three hashes, done in the background once the copy is older than
``max_age``: requests never wait for it, except the first one after a catalogue change.
"""

from __future__ import annotations

import asyncio
import logging
import time

import numpy as np
from redis.exceptions import RedisError

from services.core.bandit import BanditPolicy, Snapshot
from services.core.serving_state import ServingState
from services.core.serving_store import RawCounts, ServingStore, item_stats

log = logging.getLogger(__name__)


class ItemStatsCache:
    def __init__(self, store: ServingStore, max_age: float, policy: BanditPolicy) -> None:
        self._store = store
        self.max_age = max_age
        self.policy = policy
        self._rng = np.random.default_rng()
        self._stats: Snapshot | None = None
        self._state: ServingState | None = None
        self._read_at = 0.0
        self._lock = asyncio.Lock()
        self._refreshing: asyncio.Task[None] | None = None

    async def get(self, state: ServingState) -> Snapshot:
        """Counts aligned with ``state``'s items; refreshed behind the caller when old."""
        stats = self._stats
        if stats is not None and self._state is state:
            stale = time.monotonic() - self._read_at > self.max_age
            if stale and (self._refreshing is None or self._refreshing.done()):
                self._refreshing = asyncio.create_task(self._refresh_quietly(state))
            return stats
        return await self._refresh(state)

    async def _refresh(self, state: ServingState) -> Snapshot:
        async with self._lock:
            fresh = time.monotonic() - self._read_at <= self.max_age
            if self._stats is not None and self._state is state and fresh:
                return self._stats
            raw = await self._store.raw_item_counts()
            # Tens of thousands of counts to parse and sort: off the event loop, so requests
            # interleave with it (in the loop it was the serving benchmark's p99).
            stats = await asyncio.to_thread(self._build, raw, state)
            self._stats, self._state, self._read_at = stats, state, time.monotonic()
            return stats

    def _build(self, raw: RawCounts, state: ServingState) -> Snapshot:
        return Snapshot.build(item_stats(raw, state.item_index), self.policy, self._rng)

    async def _refresh_quietly(self, state: ServingState) -> None:
        try:
            await self._refresh(state)
        except RedisError as error:
            # Requests keep the last counts; their own Redis calls report the outage.
            log.warning("item counts not refreshed: %r", error)
