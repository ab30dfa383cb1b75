"""5) Scale: time and memory of training, publishing and serving vs users and items.

Each point: synthetic likes/dislikes (about ``per_user`` ratings per user), LightFM (the
single-family trainer code, few epochs: time per epoch is what grows) fitted and published
in its own process (peak RSS), then an api process serves it: its resident memory once the
model and catalogue are loaded, and sequential /recs latency.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import numpy as np

from bench.fixture import CACHE, add_catalogue, synthetic
from bench.lib import Instance, log, pct, rss_bytes
from bench.training import step

SERVING_REQUESTS = 200


def arrays(users: int, items: int, per_user: float) -> tuple[Any, Any]:
    path = CACHE / f"scale-{users}x{items}x{per_user}.npz"
    ratings = synthetic(users, items, per_user, seed=3)
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        np.savez(
            path,
            users=ratings.users,
            items=ratings.items,
            likes=ratings.likes(),
            n_users=users,
            n_items=items,
        )
    return path, ratings


def point(users: int, items: int, *, per_user: float, epochs: int) -> dict[str, Any]:
    path, ratings = arrays(users, items, per_user)
    instance = Instance("scale")
    try:
        trained = step(
            "scale",
            "--data",
            str(path),
            "--epochs",
            str(epochs),
            "--prefix",
            instance.prefix,
            timeout=900,
        )
        api = instance.start("api")
        instance.wait_healthy(instance.api)
        idle_rss = rss_bytes(api.pid)
        add_catalogue(instance, ratings)
        latencies: list[float] = []
        with httpx.Client(base_url=instance.api, timeout=60) as client:
            started = time.perf_counter()
            client.get("/recs/u0").raise_for_status()  # loads the model
            load_seconds = time.perf_counter() - started
            for n in range(SERVING_REQUESTS):
                user = f"u{(n * 7919) % users}" if n % 10 else f"cold{n}"
                started = time.perf_counter()
                client.get(f"/recs/{user}").raise_for_status()
                latencies.append(time.perf_counter() - started)
        served_rss = rss_bytes(api.pid)
    finally:
        instance.close()
    result = {
        "users": users,
        "items": items,
        "interactions": trained["interactions"],
        "epochs": epochs,
        "train_seconds": trained["phases"]["fit"] + trained["phases"]["dataset"],
        "publish_seconds": trained["phases"]["serialise"] + trained["phases"]["publish"],
        "blob_bytes": trained["blob_bytes"],
        "train_peak_rss": trained["peak_rss"],
        "api_rss_idle": idle_rss,
        "api_rss_serving": served_rss,
        "model_load_seconds": load_seconds,
        "recs_p50_ms": pct(latencies, 50) * 1000,
        "recs_p95_ms": pct(latencies, 95) * 1000,
    }
    log(
        f"  {users:>9,} users x {items:>7,} items: fit {result['train_seconds']:.1f}s, "
        f"publish {result['publish_seconds']:.1f}s, trainer peak "
        f"{result['train_peak_rss'] / 2**20:,.0f} MiB, api RSS {served_rss / 2**20:,.0f} MiB, "
        f"/recs p50 {result['recs_p50_ms']:.1f} ms"
    )
    return result


def run(
    *,
    user_axis: list[int],
    item_axis: list[int],
    fixed_items: int,
    fixed_users: int,
    per_user: float,
    epochs: int,
) -> dict[str, Any]:
    log(f"scale: users {user_axis} at {fixed_items:,} items; items {item_axis} at {fixed_users:,}")
    done: dict[tuple[int, int], dict[str, Any]] = {}
    wanted = [(u, fixed_items) for u in user_axis] + [(fixed_users, i) for i in item_axis]
    for users, items in wanted:
        if (users, items) in done:
            continue
        try:
            done[(users, items)] = point(users, items, per_user=per_user, epochs=epochs)
        except Exception as error:  # one failed point must not lose the others
            log(f"  {users:,} users x {items:,} items failed: {error!r}")
            done[(users, items)] = {"users": users, "items": items, "error": repr(error)[:300]}
    return {
        "run": uuid.uuid4().hex[:6],
        "per_user": per_user,
        "epochs": epochs,
        "fixed_items": fixed_items,
        "fixed_users": fixed_users,
        "users_axis": [done[(u, fixed_items)] for u in user_axis],
        "items_axis": [done[(fixed_users, i)] for i in item_axis],
    }
