"""A Lua script whose concurrent calls share one pipelined round trip to Redis.

Under load, uvicorn starts every request whose bytes arrived in one read in the same
event-loop turn; each would otherwise check a connection out of the pool, write, wait and
read on its own. Calls made in one turn are sent as one pipeline on the next turn instead:
one write and one read for all of them (the redis client's own per-call work was a third
of a prefetched /recs, py-spy in docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

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
        """The calls written at once on one connection, their replies read in order.

        Below redis-py's pipeline: its generic packing of every argument and a timeout
        context per reply were about half the client's work per call (measured with 20
        calls a batch: 33-48 -> 22-25 us per call). Nothing is retried here: a call may
        have run before the connection failed, and running it again would pop twice.
        """
        sha = _encoded(self._script.sha)
        payload = b"".join(_evalsha(sha, keys, args) for keys, args in calls)
        pool = self.redis.connection_pool
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        replies: list[Any] = []
        try:
            await connection.send_packed_command(payload, check_health=False)
            # One deadline for the batch; a connection cut short by it is closed by redis-py.
            async with asyncio.timeout(connection.socket_timeout):
                for _ in calls:
                    try:
                        replies.append(await connection.read_response(timeout=math.inf))
                    except ResponseError as error:  # that call's own error: the rest go on
                        replies.append(error)
        except TimeoutError as error:
            raise RedisTimeoutError("timeout reading the replies of a batched script") from error
        finally:
            await pool.release(connection)
        return replies


def _evalsha(sha: bytes, keys: Sequence[str | bytes], args: Sequence[Any]) -> bytes:
    """One EVALSHA in the Redis protocol, arguments encoded as redis-py encodes them."""
    parts = [sha, b"%d" % len(keys), *map(_encoded, keys), *map(_encoded, args)]
    return b"*%d\r\n$7\r\nEVALSHA\r\n" % (len(parts) + 1) + b"".join(
        b"$%d\r\n%s\r\n" % (len(part), part) for part in parts
    )


def _encoded(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value).encode()
    raise TypeError(f"cannot send {value!r} to Redis")
