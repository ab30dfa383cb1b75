"""What one refresh of an api replica's copy of the bandit's counts costs: every count read
(what each replica did every two seconds) against only those changed since its last read.

    .venv/bin/python -m bench.count_refresh [--items 24460] [--changed 2000]

Prints the median and worst of a few reads each: wall time of the read (Redis answering and
the client parsing, all on the event loop) and Redis's own time (INFO commandstats), during
which every other client of that Redis waits, and the longest single command of the read.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

from redis import Redis as SyncRedis
from redis.asyncio import Redis

from bench.lib import REDIS_URL, log
from services.common.keys import Keys
from services.core.serving_store import ServingStore


def _longest_ms(redis: SyncRedis, prefix: str) -> float:
    """The longest command on ``prefix``'s keys in Redis's slow log (every command is logged
    while measuring; other clients' are left out)."""
    durations = [
        entry["duration"]
        for entry in redis.slowlog_get(100_000)
        if prefix.encode() in entry["command"]
    ]
    return max(durations, default=0) / 1000


def _redis_usec(redis: SyncRedis) -> float:
    stats = redis.info("commandstats")
    return float(sum(v["usec"] for k, v in stats.items() if k.startswith("cmdstat_")))


async def _measure(items: int, changed: int, reads: int) -> dict[str, float]:
    keys = Keys(f"bench:counts:{uuid.uuid4().hex[:8]}:")
    sync = SyncRedis.from_url(REDIS_URL)
    redis = Redis.from_url(REDIS_URL)
    store = ServingStore(redis, keys)
    try:
        ids = [f"item{n}" for n in range(items)]
        for key in (keys.item_impressions, keys.item_likes, keys.item_dislikes):
            sync.hset(key, mapping={item: n % 97 + 1 for n, item in enumerate(ids)})
        result: dict[str, float] = {}
        threshold = (
            sync.config_get("slowlog-log-slower-than").get("slowlog-log-slower-than") or 10_000
        )
        for name in ("every count", "changed only"):
            walls, in_redis, longest = [], [], []
            for read in range(reads):
                cursor = (await store.item_count_changes(None)).cursor
                # ``changed`` items shown to someone since the replica's last read.
                for start in range(0, changed, 10):
                    entries = [f"p{item}" for item in ids[start : start + 10]]
                    await store.record_impressions(
                        f"{name}:{read}:{start}",
                        entries,
                        len(entries),
                        reset=False,
                        catalogue_version=1,
                    )
                sync.config_set("slowlog-log-slower-than", 0)
                sync.slowlog_reset()
                before_usec, started = _redis_usec(sync), time.perf_counter()
                await store.item_count_changes(None if name == "every count" else cursor)
                walls.append((time.perf_counter() - started) * 1000)
                in_redis.append((_redis_usec(sync) - before_usec) / 1000)
                sync.config_set("slowlog-log-slower-than", threshold)
                longest.append(_longest_ms(sync, keys.prefix))
            result[f"{name}: wall ms median"] = statistics.median(walls)
            result[f"{name}: wall ms max"] = max(walls)
            result[f"{name}: redis ms median"] = statistics.median(in_redis)
            # What other clients wait for at worst: Redis runs one command at a time.
            result[f"{name}: longest command ms"] = max(longest)
        return result
    finally:
        for key in sync.scan_iter(match=f"{keys.prefix}*", count=1000):
            sync.unlink(key)
        sync.close()
        await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=24_460)
    parser.add_argument("--changed", type=int, default=2_000)
    parser.add_argument("--reads", type=int, default=7)
    args = parser.parse_args()
    log(f"{args.items} items with counts, {args.changed} changed between reads")
    for name, value in asyncio.run(_measure(args.items, args.changed, args.reads)).items():
        print(f"{name:32s} {value:8.2f}")


if __name__ == "__main__":
    main()
