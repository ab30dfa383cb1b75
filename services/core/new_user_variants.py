"""Rankings shared by users with no history, ranked one at a time in a worker thread.

A user with no history gives a ranking nothing to read but the population's counts, so such
users share rankings: the first ``size`` new users of each copy of the counts get a ranking
of their own (each with its own tie order and exploration), later users of the same copy
get one of those at random. This bounds the scoring a crowd of newcomers costs without
freezing anything for longer than a copy of the counts lives.

The rankings run one after the other in one worker thread, never on the event loop: there,
the burst of eight rankings (~5 ms each) at every new copy of the counts held every other
request for tens of milliseconds (the serving benchmark's p99).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor


class NewUserVariants[T]:
    def __init__(self, size: int) -> None:
        self.size = size
        # One thread: variants are ranked one after the other, never in a burst.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="new-users")
        self._for: tuple[object, object] | None = None  # (serving state, copy of the counts)
        self._pools: dict[int, list[asyncio.Future[T]]] = {}  # by page size

    async def get(self, state: object, counts: object, k: int, rank: Callable[[], T]) -> T:
        """A variant for pages of ``k`` under ``state`` (catalogue and model) and ``counts``
        (the current copy of the counts); ``rank`` ranks a new one."""
        if self._for is None or self._for[0] is not state or self._for[1] is not counts:
            self._for, self._pools = (state, counts), {}
        pool = self._pools.setdefault(k, [])
        variant: asyncio.Future[T]
        if len(pool) < self.size:
            variant = asyncio.get_running_loop().run_in_executor(self._executor, rank)
            pool.append(variant)
        else:
            # random, not a numpy Generator: seeding one from the OS costs ~20 us.
            variant = random.choice(pool)
        try:
            # Shielded: a request that goes away must not cancel a ranking others share.
            return await asyncio.shield(variant)
        except Exception:
            if variant in pool:  # the next new user ranks again instead
                pool.remove(variant)
            raise
