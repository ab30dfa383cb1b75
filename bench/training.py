"""3) Training: a trainer cycle (read log, fit, publish) next to a bare LightFM fit.

Both run on the same synthetic interactions, each in its own process (so peak memory is
its own), one after the other in the same run: bare fit, single-family trainer
(``RECSYS_MODEL=lightfm``), default ``auto`` trainer, and the bare fit again to bracket
drift. Each trainer process runs the cycles a long-running trainer runs
(``bench/train_worker.py cycle``): the ``first`` on all but the last 1% of the log (parses
it all, selects the family on a validation split, computes the item neighbours), then
steady ones as the last 1% arrives in slices (each reads only its new lines, fits the
selected family once, reuses the neighbours), each paired with a bare fit in the same
process, and a ``refresh`` one that recomputes the neighbours. The median steady cycle is
the one compared with the target (``single``/``auto`` at the top level); the other two are
reported beside it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from bench.fixture import CACHE, synthetic
from bench.lib import REDIS_URL, ROOT, log, median

TARGET_OVERHEAD = 0.20


def dataset(users: int, items: int, mean_ratings: float) -> tuple[Path, Path, int]:
    """Synthetic ratings as arrays (bare fit) and as the trainer's JSON-lines log."""
    tag = f"{users}x{items}x{mean_ratings}"
    arrays, log_path = CACHE / f"train-{tag}.npz", CACHE / f"train-{tag}.log"
    if arrays.exists() and log_path.exists():
        return arrays, log_path, int(np.load(arrays)["users"].size)
    ratings = synthetic(users, items, mean_ratings, seed=11)
    likes = ratings.likes()
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(
        arrays,
        users=ratings.users,
        items=ratings.items,
        likes=likes,
        n_users=users,
        n_items=items,
    )
    order = np.argsort(ratings.timestamps, kind="stable")
    tmp = log_path.with_suffix(".tmp")
    with open(tmp, "w") as out:
        for row in order:
            out.write(
                json.dumps(
                    {
                        "event_id": uuid.uuid4().hex,
                        "user_id": f"u{ratings.users[row]}",
                        "item_ids": [f"i{ratings.items[row]}"],
                        "actions": ["like" if likes[row] else "dislike"],
                        "timestamp": float(ratings.timestamps[row]),
                    }
                )
                + "\n"
            )
    tmp.rename(log_path)
    return arrays, log_path, len(ratings)


def step(*args: str, timeout: float = 1200) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.train_worker", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        check=False,
        env={"PYTHONPATH": str(ROOT), "RECSYS_LOG_LEVEL": "WARNING", "PATH": "/usr/bin:/bin"},
    )
    if completed.returncode != 0:
        raise RuntimeError(f"train_worker {args} failed:\n{completed.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def cycles(result: dict[str, Any]) -> str:
    pairs = result["interleaved"]
    return (
        f"first {result['first']['seconds']:.1f}s, steady {result['seconds']:.1f}s, "
        f"neighbour refresh {result['refresh']['seconds']:.1f}s; steady / interleaved bare "
        f"fit: x{pairs['ratio_median']:.2f} wall, x{pairs['cpu_ratio_median']:.2f} CPU"
    )


def wipe(prefix: str) -> None:
    from redis import Redis

    redis = Redis.from_url(REDIS_URL)
    keys = list(redis.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        redis.unlink(*keys)
    redis.close()


def run(*, users: int, items: int, mean_ratings: float, epochs: int) -> dict[str, Any]:
    arrays, log_path, interactions = dataset(users, items, mean_ratings)
    log(f"training: {interactions:,} interactions, {users:,} users, {items:,} items")
    prefix = f"bench:train-{uuid.uuid4().hex[:6]}:"
    common = ["--epochs", str(epochs), "--redis", REDIS_URL, "--prefix", prefix]
    try:
        bare_runs = [step("bare", "--data", str(arrays), *common)]
        log(f"  bare LightFM fit: {bare_runs[0]['seconds']:.1f}s")
        trainer = ["cycle", "--log", str(log_path), "--data", str(arrays)]
        single = step(*trainer, "--model", "lightfm", *common)
        log(f"  cycles, RECSYS_MODEL=lightfm: {cycles(single)}")
        auto = step(*trainer, "--model", "auto", *common)
        log(f"  cycles, auto: {cycles(auto)} (chose {auto['family']})")
        bare_runs.append(step("bare", "--data", str(arrays), *common))
        log(f"  bare LightFM fit again: {bare_runs[1]['seconds']:.1f}s")
    finally:
        wipe(prefix)
    bare_seconds = median(r["seconds"] for r in bare_runs)
    return {
        "users": users,
        "items": items,
        "interactions": interactions,
        "likes": bare_runs[0]["likes"],
        "epochs": epochs,
        "bare": {
            "seconds": bare_seconds,
            "runs": [r["seconds"] for r in bare_runs],
            "peak_rss": max(r["peak_rss"] for r in bare_runs),
        },
        "single": single,
        "auto": auto,
        "overhead_single": single["seconds"] / bare_seconds - 1,
        "overhead_auto": auto["seconds"] / bare_seconds - 1,
        # Steady cycle against a bare fit run right before or after it in the same process
        # (median of the pairs): robust to the load drifting between processes.
        "overhead_interleaved": {
            name: {
                "wall": result["interleaved"]["ratio_median"] - 1,
                "cpu": result["interleaved"]["cpu_ratio_median"] - 1,
            }
            for name, result in (("single", single), ("auto", auto))
        },
        "overhead_by_cycle": {
            name: {
                kind: (result if kind == "steady" else result[kind])["seconds"] / bare_seconds - 1
                for kind in ("first", "steady", "refresh")
            }
            for name, result in (("single", single), ("auto", auto))
        },
        "targets": {"overhead": TARGET_OVERHEAD},
        "met": {
            "single": single["seconds"] / bare_seconds - 1 <= TARGET_OVERHEAD,
            "auto": auto["seconds"] / bare_seconds - 1 <= TARGET_OVERHEAD,
        },
    }
