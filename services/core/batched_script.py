"""A Lua script whose concurrent calls share one pipelined round trip to Redis.

Under load, uvicorn starts every request whose bytes arrived in one read in the same
event-loop turn; each would otherwise check a connection out of the pool, write, wait and
read on its own. Calls made in one turn are sent as one pipeline on the next turn instead:
one write and one read for all of them (the redis client's own per-call work was a third
of a prefetched /recs, py-spy in docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

Call = tuple[Sequence[str | bytes], Sequence[Any], "asyncio.Future[Any]"]


class BatchedScript:
    def __init__(self, redis: Redis, script: str) -> None:
        self.redis = redis
        self._script = redis.register_script(script)
        self._pending: list[Call] = []
        self._running: set[asyncio.Task[None]] = set()

    async def __call__(self, keys: Sequence[str | bytes], args: Sequence[Any]) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((keys, args, future))
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.ensure_future(self._run(batch))
        # The loop keeps only weak references to tasks.
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[Call]) -> None:
        try:
            replies = await self._execute(batch)
        except BaseException as error:  # the connection failed: every caller hears of it
            for *_, future in batch:
                if not future.done():
                    future.set_exception(error)
            if not isinstance(error, Exception):
                raise
            return
        for (*_, future), reply in zip(batch, replies, strict=True):
            if future.done():  # the caller went away (client disconnected)
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _execute(self, batch: list[Call]) -> list[Any]:
        replies = await self._pipeline([(keys, args) for keys, args, _ in batch])
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            # Redis restarted or its script cache was flushed: load it, rerun only those
            # (the others already ran; running them twice would pop twice).
            self._script.sha = await self.redis.script_load(self._script.script)
            rerun = await self._pipeline([(batch[i][0], batch[i][1]) for i in missing])
            for i, reply in zip(missing, rerun, strict=True):
                replies[i] = reply
        return replies

    async def _pipeline(
        self, calls: list[tuple[Sequence[str | bytes], Sequence[Any]]]
    ) -> list[Any]:
        pipe = self.redis.pipeline(transaction=False)
        for keys, args in calls:
            pipe.evalsha(self._script.sha, len(keys), *keys, *args)
        return list(await pipe.execute(raise_on_error=False))
