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

``job`` measures what a Kubernetes Job (``recsys train --once``, a fresh process each time)
costs: a first Job on a copy of the log without its last 1% (nothing to start from: it
parses the whole log, selects, computes the neighbours), then Jobs as the last 1% arrives
in slices, each a new ``bench/train_worker.py job`` process starting from what the previous
one left (log snapshot, selection record, published neighbours), each paired with a bare
fit in its own process.
"""

from __future__ import annotations

import json
import shutil
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


def jobs(
    log_path: Path, arrays: Path, common: list[str], *, model: str, rounds: int = 3
) -> dict[str, Any]:
    """Kubernetes Jobs one after another on a growing log; see the module docstring."""
    lines = log_path.read_bytes().splitlines(keepends=True)
    keep = len(lines) - len(lines) // 100
    work = Path("/tmp/recsys-bench/train") / f"job-{uuid.uuid4().hex[:8]}"
    work.mkdir(parents=True)
    head = work / "interactions.log"
    head.write_bytes(b"".join(lines[:keep]))
    tail = lines[keep:]
    del lines
    worker = ["job", "--log", str(head), "--data", str(arrays), "--model", model, *common]
    try:
        first = step(*worker)
        steady = []
        for round_no, chunk in enumerate(np.array_split(np.arange(len(tail)), rounds)):
            with open(head, "ab") as out:
                out.writelines(tail[i] for i in chunk)
            steady.append(step(*worker, *(["--bare-first"] if round_no % 2 == 0 else [])))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratios = [r["seconds"] / r["bare"]["seconds"] for r in steady]
    cpu_ratios = [r["cpu_seconds"] / r["bare"]["cpu_seconds"] for r in steady]
    with_imports = [(r["seconds"] + r["import_seconds"]) / r["bare"]["seconds"] for r in steady]
    median_job = sorted(steady, key=lambda r: r["seconds"])[len(steady) // 2]
    return {
        **median_job,
        "model": model,
        "bare_seconds": median(r["bare"]["seconds"] for r in steady),
        "overhead": float(np.median(ratios)) - 1,
        "cpu_overhead": float(np.median(cpu_ratios)) - 1,
        "overhead_with_imports": float(np.median(with_imports)) - 1,
        "first": {**first, "overhead": first["seconds"] / first["bare"]["seconds"] - 1},
        "interleaved": {
            "job_seconds": [r["seconds"] for r in steady],
            "bare_seconds": [r["bare"]["seconds"] for r in steady],
            "job_cpu_seconds": [r["cpu_seconds"] for r in steady],
            "bare_cpu_seconds": [r["bare"]["cpu_seconds"] for r in steady],
            "import_seconds": [r["import_seconds"] for r in steady],
            "ratio_median": float(np.median(ratios)),
            "cpu_ratio_median": float(np.median(cpu_ratios)),
        },
        "tail_events": len(tail),
    }


def job_summary(result: dict[str, Any]) -> str:
    first = result["first"]
    return (
        f"first Job {first['seconds']:.1f}s (x{1 + first['overhead']:.2f} its bare fit), "
        f"later Jobs {result['seconds']:.1f}s (+{result['import_seconds']:.1f}s imports): "
        f"x{result['interleaved']['ratio_median']:.2f} wall, "
        f"x{result['interleaved']['cpu_ratio_median']:.2f} CPU of the bare fit in the same "
        f"process; peak {result['peak_rss'] / 2**20:,.0f} MiB"
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
    # The Jobs start from nothing but what earlier Jobs left: a prefix of their own.
    job_common = ["--epochs", str(epochs), "--redis", REDIS_URL, "--prefix", f"{prefix}job:"]
    try:
        bare_runs = [step("bare", "--data", str(arrays), *common)]
        log(f"  bare LightFM fit: {bare_runs[0]['seconds']:.1f}s")
        trainer = ["cycle", "--log", str(log_path), "--data", str(arrays)]
        single = step(*trainer, "--model", "lightfm", *common)
        log(f"  cycles, RECSYS_MODEL=lightfm: {cycles(single)}")
        auto = step(*trainer, "--model", "auto", *common)
        log(f"  cycles, auto: {cycles(auto)} (chose {auto['family']})")
        job = jobs(log_path, arrays, job_common, model="auto")
        log(f"  Kubernetes Jobs (recsys train --once), auto: {job_summary(job)}")
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
        # A Kubernetes Job (a fresh process per cycle, default ``auto``) after earlier
        # Jobs left their state: ``seconds``/``peak_rss`` of the median one, ``bare_seconds``
        # of the fits paired with them, ``overhead`` (median paired ratio - 1, wall),
        # ``first`` the Job with nothing to start from.
        "job": job,
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
            "job": job["overhead"] <= TARGET_OVERHEAD,
        },
    }
