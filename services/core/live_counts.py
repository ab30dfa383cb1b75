"""The bandit's evidence as one api replica sees it: Redis counts, at most a moment old.

Every replica reads the same counters (the ingester and every replica's impressions update
them atomically in Redis), so replicas agree within ``max_age``. A refresh reads only the
items whose counts changed since the last one (services/core/item_counts.py), in the
background once the copy is older than ``max_age``: requests never wait for it, except the
first one after a catalogue change, which reads every count.
"""

from __future__ import annotations

import asyncio
import logging
import time

import numpy as np
from redis.exceptions import RedisError

from services.core.bandit import BanditPolicy, ItemStats, Snapshot
from services.core.item_counts import CountChanges, apply_changes
from services.core.serving_state import ServingState
from services.core.serving_store import ServingStore

log = logging.getLogger(__name__)


class ItemStatsCache:
    def __init__(self, store: ServingStore, max_age: float, policy: BanditPolicy) -> None:
        self._store = store
        self.max_age = max_age
        self.policy = policy
        self._rng = np.random.default_rng()
        self._stats: Snapshot | None = None
        self._state: ServingState | None = None
        self._cursor: int | None = None
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
        return await self.refresh(state)

    async def refresh(self, state: ServingState) -> Snapshot:
        """Counts read now (only the changed ones when the copy is of the same catalogue)."""
        async with self._lock:
            fresh = time.monotonic() - self._read_at <= self.max_age
            if self._stats is not None and self._state is state and fresh:
                return self._stats
            # A new model over the same catalogue (every training): same items, same order.
            same_items = (
                self._state is not None and self._state.catalogue_version == state.catalogue_version
            )
            changes = await self._store.item_count_changes(self._cursor if same_items else None)
            # Parsing and sorting tens of thousands of counts: off the event loop, so
            # requests interleave with it (in the loop it was the serving benchmark's p99).
            previous = self._stats.stats if self._stats is not None and same_items else None
            stats = await asyncio.to_thread(self._build, previous, changes, state)
            self._stats, self._state, self._read_at = stats, state, time.monotonic()
            self._cursor = changes.cursor
            return stats

    def _build(
        self, previous: ItemStats | None, changes: CountChanges, state: ServingState
    ) -> Snapshot:
        stats = apply_changes(previous, changes, state.item_index)
        return Snapshot.build(stats, self.policy, self._rng)

    async def _refresh_quietly(self, state: ServingState) -> None:
        try:
            await self.refresh(state)
        except RedisError as error:
            # Requests keep the last counts; their own Redis calls report the outage.
            log.warning("item counts not refreshed: %r", error)
