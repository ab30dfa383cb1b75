"""4) Freshness: from the 200 of /interact to the first /recs that reflects the like.

Per trial: a known user's impressions and prefetched list are cleared and ``/recs`` read
(list L, which is deterministic for a given history: the rotation seed depends on the user
and the number of impressions). The user likes L[0]; from the 200 on, the bench clears the
impressions and the prefetched list (else the next page would lack L[0] anyway) and reads
``/recs`` again until L[0] is gone (rated items are never recommended). The ingester applies
the rating and empties the user's list in one script, so this is also when the next request
ranks with the like. It also notes when the rating reached Redis (ingester: queue -> fsynced
log -> Redis), to split the delay. Each trial is bounded (5 s); a trial that times out counts
as 5 s.
"""

from __future__ import annotations

import random
import time
from typing import Any

import httpx
from redis import Redis

from bench.fixture import ServingSetup
from bench.lib import REDIS_URL, log, pct
from services.common.keys import Keys

TARGET_P95 = 1.0
TRIAL_TIMEOUT = 5.0


def run(setup: ServingSetup, *, trials: int) -> dict[str, Any]:
    instance = setup.instance
    keys = Keys(instance.prefix)
    redis = Redis.from_url(REDIS_URL)
    rng = random.Random(5)
    users = rng.sample(range(len(setup.ratings.user_ids)), trials)
    visible: list[float] = []
    stored: list[float] = []
    timeouts = 0
    log(f"freshness: {trials} trials")
    with (
        httpx.Client(base_url=instance.api, timeout=10) as api,
        httpx.Client(base_url=instance.collector, timeout=10) as collector,
    ):
        for user_no in users:
            user = f"u{user_no}"
            redis.delete(keys.shown(user), keys.prefetched(user))
            first = api.get(f"/recs/{user}").json()["item_ids"]
            redis.delete(keys.shown(user), keys.prefetched(user))
            item = first[0]
            body = {"user_id": user, "item_ids": [item], "actions": ["like"]}
            collector.post("/interact", json=body).raise_for_status()
            accepted = time.perf_counter()
            in_redis: float | None = None
            seen: float | None = None
            while time.perf_counter() - accepted < TRIAL_TIMEOUT:
                if in_redis is None and redis.hexists(keys.rated(user), item):
                    in_redis = time.perf_counter() - accepted
                redis.delete(keys.shown(user), keys.prefetched(user))
                if item not in api.get(f"/recs/{user}").json()["item_ids"]:
                    seen = time.perf_counter() - accepted
                    break
            if seen is None:
                timeouts += 1
                seen = TRIAL_TIMEOUT
            visible.append(seen)
            stored.append(in_redis if in_redis is not None else seen)
    redis.close()
    p95 = pct(visible, 95)
    log(f"  p50 {pct(visible, 50) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, timeouts {timeouts}")
    return {
        "trials": trials,
        "timeouts": timeouts,
        "visible_p50_s": pct(visible, 50),
        "visible_p95_s": p95,
        "visible_max_s": max(visible),
        "stored_p50_s": pct(stored, 50),
        "stored_p95_s": pct(stored, 95),
        "samples_s": visible,
        "targets": {"p95_s": TARGET_P95},
        "met": {"p95": p95 <= TARGET_P95 and timeouts == 0},
    }
