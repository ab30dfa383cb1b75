"""Concurrent script calls sharing one pipeline: each caller gets its own reply, once."""

from __future__ import annotations

import asyncio

from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.common.settings import Settings
from services.core.batched_script import BatchedScript, _evalsha

# Pops one element and says how long the list was: a rerun would be visible.
POP = "local n = redis.call('LLEN', KEYS[1]); return {redis.call('LPOP', KEYS[1]), n, ARGV[1]}"
FAILS = "return redis.error_reply('no ' .. ARGV[1])"


async def _calls(settings: Settings, script: str, calls: list[tuple[str, str]]) -> list[object]:
    redis = Redis.from_url(settings.redis_server_url)
    try:
        batched = BatchedScript(redis, script)
        return await asyncio.gather(
            *(batched([key], [arg]) for key, arg in calls), return_exceptions=True
        )
    finally:
        await redis.aclose()


def test_concurrent_callers_get_their_own_replies(
    settings: Settings, redis_client: SyncRedis
) -> None:
    keys = [f"{settings.key_prefix}list:{i}" for i in range(20)]
    for key in keys:
        redis_client.rpush(key, "a", "b", "c")
    calls = [(key, f"call-{n}") for n, key in enumerate(keys * 2)]
    replies = asyncio.run(_calls(settings, POP, calls))
    assert replies[:20] == [[b"a", 3, f"call-{n}".encode()] for n in range(20)]
    assert replies[20:] == [[b"b", 2, f"call-{n}".encode()] for n in range(20, 40)]


def test_a_flushed_script_cache_is_reloaded_without_running_twice(
    settings: Settings, redis_client: SyncRedis
) -> None:
    key = f"{settings.key_prefix}list"
    redis_client.rpush(key, *"abcdef")

    async def scenario() -> list[object]:
        redis = Redis.from_url(settings.redis_server_url)
        try:
            batched = BatchedScript(redis, POP)
            first = await batched([key], ["1"])
            await redis.script_flush()
            later = await asyncio.gather(batched([key], ["2"]), batched([key], ["3"]))
            return [first, *later]
        finally:
            await redis.aclose()

    replies = asyncio.run(scenario())
    assert [reply[0] for reply in replies] == [b"a", b"b", b"c"]  # type: ignore[index]
    assert redis_client.llen(key) == 3


def test_errors_reach_only_their_caller(settings: Settings, redis_client: SyncRedis) -> None:
    replies = asyncio.run(_calls(settings, FAILS, [("k1", "one"), ("k2", "two")]))
    assert all(isinstance(reply, ResponseError) for reply in replies)
    assert "no one" in str(replies[0]) and "no two" in str(replies[1])


def test_a_dead_server_fails_every_caller(settings: Settings) -> None:
    down = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    replies = asyncio.run(_calls(down, POP, [("k", "1"), ("k", "2")]))
    assert len(replies) == 2 and all(isinstance(r, RedisConnectionError) for r in replies)


def test_commands_are_sent_as_redis_py_would_pack_them() -> None:
    keys: list[str | bytes] = ["user:é:list", b"raw\x00key"]
    args = [10, 2.5, "ttl", b"\xff", -3]
    packed = b"".join(Connection().pack_command("EVALSHA", "abc123", len(keys), *keys, *args))
    assert _evalsha(b"abc123", keys, args) == packed


def test_a_reply_late_past_the_timeout_never_reaches_the_next_batch(
    settings: Settings, redis_client: SyncRedis
) -> None:
    key = f"{settings.key_prefix}list"
    redis_client.rpush(key, *"abc")
    # Busy for 0.4 s, then pops: its reply arrives after the caller gave up.
    slow = "local t = redis.call('TIME'); repeat local n = redis.call('TIME') until " + (
        "(n[1] - t[1]) * 1000000 + n[2] - t[2] > 400000; return redis.call('LPOP', KEYS[1])"
    )

    async def scenario() -> tuple[object, object]:
        redis = Redis.from_url(settings.redis_server_url, socket_timeout=0.1)
        try:
            first = await asyncio.gather(
                BatchedScript(redis, slow)([key], []), return_exceptions=True
            )
            await asyncio.sleep(0.5)
            return first[0], await BatchedScript(redis, "return redis.call('LPOP', KEYS[1])")(
                [key], []
            )
        finally:
            await redis.aclose()

    first, second = asyncio.run(scenario())
    assert isinstance(first, RedisTimeoutError)
    assert second == b"b"  # its own reply, not the first call's late "a"
