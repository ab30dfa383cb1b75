"""One health check for all probes that arrive together, reused for a moment.

``/healthcheck`` is exempt from the concurrency limit (an overloaded pod must not also be
declared dead), so a flood of probes - or of anything calling it - was a flood of Redis
and broker round trips, each probe waiting behind the others. With this, callers that
arrive while a check runs share it (a flood costs one check at a time), and its answer
may be reused for ``max_age`` seconds (0 by default: no answer older than its request).
(async-lru would do it too; not worth a dependency for one call site per service.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class SharedCheck[T]:
    """``await get()`` runs ``check`` at most once per ``max_age`` and shares the result."""

    def __init__(self, check: Callable[[], Awaitable[T]], max_age: float) -> None:
        self.check = check
        self.max_age = max_age
        self._result: tuple[float, T] | None = None
        self._running: asyncio.Future[T] | None = None

    async def get(self) -> T:
        if self._result is not None and time.monotonic() - self._result[0] < self.max_age:
            return self._result[1]
        if self._running is None:
            self._running = asyncio.ensure_future(self._run())
        # shield: a caller that goes away must not cancel the others' check.
        return await asyncio.shield(self._running)

    async def _run(self) -> T:
        try:
            result = await self.check()
            self._result = (time.monotonic(), result)
            return result
        finally:
            self._running = None
