"""1) Serving: /recs throughput and latency next to the hello floor, interleaved rounds."""

from __future__ import annotations

from typing import Any

import httpx
from redis import Redis

from bench.fixture import ServingSetup
from bench.lib import REDIS_URL, Hello, interleaved, log, paired_ratio, summarise, wrk
from services.common.settings import Settings

TARGET_RATIO = 0.5
TARGET_P99_MS = 20.0


def impressions(prefix: str, limit: int = 200_000) -> dict[str, int]:
    """How many users have impressions recorded and how many items were recorded in all."""
    redis = Redis.from_url(REDIS_URL)
    keys: list[bytes] = []
    for key in redis.scan_iter(match=f"{prefix}user:*:shown", count=2000):
        keys.append(key)
        if len(keys) >= limit:
            break
    total = 0
    for start in range(0, len(keys), 5000):
        pipe = redis.pipeline(transaction=False)
        for key in keys[start : start + 5000]:
            pipe.scard(key)
        total += sum(pipe.execute())
    redis.close()
    return {"users_with_impressions": len(keys), "impressions": total}


def answer_paths(api: str) -> dict[str, float]:
    """The api's own count of /recs answers by path: prefetched, new-user variant, fresh."""
    counts = {"hit": 0.0, "new_user": 0.0, "miss": 0.0}
    for line in httpx.get(f"{api}/metrics", timeout=10).text.splitlines():
        if line.startswith("recsys_recs_prefetch_total{"):
            result = line.split('result="', 1)[1].split('"', 1)[0]
            counts[result] = float(line.rsplit(" ", 1)[1])
    return counts


def run(setup: ServingSetup, *, rounds: int, seconds: float, connections: int) -> dict[str, Any]:
    users = len(setup.ratings.user_ids)
    env_recs = {"BENCH_PATH": "/recs/u", "BENCH_USERS": str(users)}
    env_hello = {"BENCH_PATH": "/hello?u=", "BENCH_USERS": str(users)}
    before = impressions(setup.instance.prefix)
    with Hello() as hello:
        # Short warm-up of both, unmeasured.
        wrk(hello.url, "recs.lua", seconds=1, connections=connections, env=env_hello)
        wrk(setup.instance.api, "recs.lua", seconds=1, connections=connections, env=env_recs)
        log(f"serving: {rounds} rounds of {seconds:.0f}s, {connections} connections")
        paths_before = answer_paths(setup.instance.api)
        results = interleaved(
            rounds,
            {
                "hello": lambda: wrk(
                    hello.url, "recs.lua", seconds=seconds, connections=connections, env=env_hello
                ),
                "recs": lambda: wrk(
                    setup.instance.api,
                    "recs.lua",
                    seconds=seconds,
                    connections=connections,
                    env=env_recs,
                ),
            },
        )
        paths_after = answer_paths(setup.instance.api)
        paths = {name: paths_after[name] - paths_before[name] for name in paths_after}
        log(f"  /recs answers in the rounds: {paths}")

        # Service time without queueing: one connection, the same two endpoints.
        def one_connection(url: str, env: dict[str, str]) -> dict[str, Any]:
            return wrk(
                url, "recs.lua", seconds=seconds / 2, connections=1, threads=1, env=env
            ).public()

        single = {
            "recs": one_connection(setup.instance.api, env_recs),
            "hello": one_connection(hello.url, env_hello),
            # ?explain=true always ranks afresh: the cost of a page that is not prefetched.
            "fresh": one_connection(
                setup.instance.api, {**env_recs, "BENCH_SUFFIX": "?explain=true"}
            ),
        }
        log(
            f"  one connection: /recs p50 {single['recs']['p50_ms']:.2f} ms, p99 "
            f"{single['recs']['p99_ms']:.2f} ms; hello p50 {single['hello']['p50_ms']:.2f} ms; "
            f"a fresh ranking p50 {single['fresh']['p50_ms']:.2f} ms"
        )
    after = impressions(setup.instance.prefix)
    recs, floor = summarise(results["recs"]), summarise(results["hello"])
    ratio = paired_ratio(results["recs"], results["hello"])
    return {
        "users": users,
        "items": len(setup.ratings.item_ids),
        "ratings": len(setup.ratings),
        "model_family": setup.model.family,
        "connections": connections,
        "rounds": rounds,
        "seconds_per_round": seconds,
        "recs": recs,
        "hello": floor,
        "ratio": ratio,
        "one_connection": single,
        "answer_paths": paths,
        "prefetch_seconds": setup.prefetch_seconds,
        "prefetch_redis_bytes": setup.prefetch_redis_bytes,
        "prefetch_pages": Settings.model_fields["prefetch_pages"].default,
        "impressions_before": before,
        "impressions_after": after,
        "targets": {"ratio": TARGET_RATIO, "p99_ms": TARGET_P99_MS},
        "met": {
            "ratio": ratio["median"] >= TARGET_RATIO,
            "p99": recs["p99_ms"] < TARGET_P99_MS,
        },
    }
