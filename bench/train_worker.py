"""One measured training step in its own process, so its peak memory is its own.

    python -m bench.train_worker bare  --data D.npz --epochs E
    python -m bench.train_worker cycle --log L --data D.npz --model lightfm|auto --epochs E
        --prefix P [--tail F] [--rounds R]
    python -m bench.train_worker job   --log L [--data D.npz] --model lightfm|auto --epochs E
        --prefix P [--bare-first]
    python -m bench.train_worker scale --data D.npz --epochs E --prefix P

Prints one JSON line: seconds, a breakdown by phase and ``peak_rss`` (ru_maxrss).
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

PHASES: dict[str, float] = defaultdict(float)


def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``fn`` so its wall time accumulates under ``name`` (the code itself unchanged)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            PHASES[name] += time.perf_counter() - started

    return wrapper


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def load_positives(path: Path) -> Any:
    from scipy import sparse

    data = np.load(path)
    likes = data["likes"]
    shape = (int(data["n_users"]), int(data["n_items"]))
    return sparse.coo_matrix(
        (np.ones(int(likes.sum()), dtype=np.float32), (data["users"][likes], data["items"][likes])),
        shape=shape,
    )


def bare(args: argparse.Namespace) -> dict[str, Any]:
    """LightFM alone on the like matrix, with the trainer's hyper-parameters."""
    from lightfm import LightFM

    from services.common.settings import Settings

    settings = Settings(lightfm_epochs=args.epochs)
    positives = load_positives(args.data)
    model = LightFM(
        no_components=settings.lightfm_components,
        loss="warp",
        learning_rate=settings.lightfm_learning_rate,
        random_state=np.random.RandomState(42),
    )
    started, cpu = time.perf_counter(), time.process_time()
    model.fit(positives, epochs=args.epochs, num_threads=settings.train_threads)
    return {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
        "likes": int(positives.nnz),
    }


def peak_rss_since_reset() -> int:
    """The process's resident high-water mark (VmHWM) since ``reset_peak_rss``."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return peak_rss()


def reset_peak_rss() -> None:
    """Start VmHWM again from the current RSS (Linux >= 4.0: write 5 to clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")


def split_log(source: Path, tail: float, work: Path) -> tuple[Path, list[bytes]]:
    """A copy of the log without its last ``tail`` share of lines, and those lines."""
    lines = source.read_bytes().splitlines(keepends=True)
    keep = len(lines) - int(len(lines) * tail)
    work.mkdir(parents=True, exist_ok=True)
    head = work / f"cycle-{uuid.uuid4().hex[:8]}.log"
    with open(head, "wb") as out:
        out.writelines(lines[:keep])
    return head, lines[keep:]


def instrument(interaction_log: Any) -> Any:
    """Time the trainer's phases by wrapping the functions it calls (the code unchanged)."""
    from services.trainer import carryover, dataset, selection, training
    from services.trainer.feedback_state import FeedbackState
    from services.trainer.models import lightfm_model

    store_add = dataset.InteractionStore.add

    def add_timed(self: Any, events: Any) -> int:
        """Dataset time without the log reading the streamed merge does inside it."""
        read_before, started = PHASES["read log"], time.perf_counter()
        added = store_add(self, events)
        reading = PHASES["read log"] - read_before
        PHASES["dataset"] += time.perf_counter() - started - reading
        return added

    dataset.InteractionStore.add = add_timed  # type: ignore[method-assign]
    dataset.InteractionStore.interactions = timed(  # type: ignore[method-assign]
        "dataset", dataset.InteractionStore.interactions
    )
    fit_phase = "fit (all families, incl. neighbours)"
    selection.fit_model = timed(fit_phase, selection.fit_model)  # type: ignore[attr-defined]
    training.fit_model = timed(fit_phase, training.fit_model)  # type: ignore[attr-defined]
    training.select_model = timed(  # type: ignore[attr-defined]
        "selection (validation fits, scoring, refit)",
        training.select_model,  # type: ignore[attr-defined]
    )
    selection.evaluate_model = timed("validation scoring", selection.evaluate_model)  # type: ignore[attr-defined]
    selection.temporal_split = timed("validation split", selection.temporal_split)  # type: ignore[attr-defined]
    lightfm_model.ease_neighbours = timed("neighbours (EASE top-M)", lightfm_model.ease_neighbours)  # type: ignore[attr-defined]
    FeedbackState.publish_model = timed(  # type: ignore[method-assign]
        "publish (serialise + Redis)", FeedbackState.publish_model
    )
    read_new = interaction_log.read_new

    def read_timed(cursor: Any) -> Any:
        """Time spent inside the log reader, however the cycle consumes it."""
        events = read_new(cursor)
        while True:
            started = time.perf_counter()
            try:
                event = next(events)
            except StopIteration:
                PHASES["read log"] += time.perf_counter() - started
                return
            PHASES["read log"] += time.perf_counter() - started
            yield event

    interaction_log.read_new = read_timed
    for owner, method, phase in (
        (carryover.LogSnapshot, "load", "log snapshot (load)"),
        (carryover.LogSnapshot, "save", "log snapshot (save)"),
        (carryover.SelectionRecord, "load", "selection record (load)"),
        (carryover.SelectionRecord, "save", "selection record (save)"),
        (carryover.SelectionRecord, "neighbours", "neighbours (from the published blob)"),
    ):
        setattr(owner, method, timed(phase, getattr(owner, method)))
    return interaction_log


def cycle(args: argparse.Namespace) -> dict[str, Any]:
    """A long-running trainer's cycles as it runs them, phases timed by wrapping functions.

    1. ``first``: a fresh trainer on the log minus its last ``--tail`` share of lines
       (reads and parses everything, selects the model family, computes neighbours);
    2. ``--rounds`` steady cycles, each after the next slice of those last lines was
       appended: it reads only them, fits the selected family once, reuses the item
       neighbours. Each is interleaved with a bare LightFM fit on ``--data`` in this same
       process (alternating which goes first), so the two see the same machine load; the
       median steady cycle is the returned top level, the pairs are in ``interleaved``;
    3. ``refresh``: the same data again with the neighbours recomputed
       (``neighbours_refresh_growth=0``), the cost of a cycle that refreshes them.
    Each cycle reports its own seconds, CPU seconds, phases and peak RSS (VmHWM reset
    before each cycle).
    """
    from redis import Redis

    from services.common.keys import Keys
    from services.common.settings import Settings
    from services.trainer import training
    from services.trainer.feedback_state import FeedbackState
    from services.trainer.interaction_log import InteractionLog

    head, tail_lines = split_log(args.log, args.tail, args.work)
    settings = Settings(
        model=args.model,
        lightfm_epochs=args.epochs,
        key_prefix=args.prefix,
        redis_url=args.redis,
        data_dir=head.parent,
    )
    interaction_log = instrument(InteractionLog(head, read_only=True))
    redis = Redis.from_url(args.redis)
    state = FeedbackState(redis, Keys(args.prefix))
    trainer = training.Trainer(settings, interaction_log, state)

    def one() -> dict[str, Any]:
        PHASES.clear()
        reset_peak_rss()
        started, cpu = time.perf_counter(), time.process_time()
        outcome = trainer.cycle()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        model = outcome.model
        return {
            "seconds": seconds,
            "cpu_seconds": cpu,
            "published": outcome.published,
            "reason": outcome.reason,
            "family": model.family if model else None,
            "events": outcome.events,
            "blob_bytes": len(model.to_bytes()) if model else 0,
            "metrics": {k: v for k, v in (model.metrics if model else {}).items() if "ndcg" in k},
            "phases": dict(PHASES),
            "peak_rss": peak_rss_since_reset(),
        }

    def bare_here() -> dict[str, Any]:
        return bare(args)

    steady: list[dict[str, Any]] = []
    bares: list[dict[str, float]] = []
    try:
        first = one()
        for round_no, chunk in enumerate(np.array_split(np.arange(len(tail_lines)), args.rounds)):
            with open(head, "ab") as out:
                out.writelines(tail_lines[i] for i in chunk)
            if args.data is None:  # no bare fit to pair with (bench/ab_train.py)
                steady.append(one())
            elif round_no % 2:
                steady.append(one())
                bares.append(bare_here())
            else:
                bares.append(bare_here())
                steady.append(one())
        trainer.settings = settings.model_copy(update={"neighbours_refresh_growth": 0.0})
        refresh = one()
    finally:
        head.unlink(missing_ok=True)
    median_steady = sorted(steady, key=lambda r: r["seconds"])[len(steady) // 2]
    PHASES.clear()
    PHASES.update(median_steady["phases"])
    ratios = [s["seconds"] / b["seconds"] for s, b in zip(steady, bares, strict=False)]
    cpu_ratios = [s["cpu_seconds"] / b["cpu_seconds"] for s, b in zip(steady, bares, strict=False)]
    return {
        **median_steady,
        "first": first,
        "refresh": refresh,
        "interleaved": {
            "steady_seconds": [r["seconds"] for r in steady],
            "bare_seconds": [b["seconds"] for b in bares],
            "steady_cpu_seconds": [r["cpu_seconds"] for r in steady],
            "bare_cpu_seconds": [b["cpu_seconds"] for b in bares],
            "ratio_median": float(np.median(ratios)) if ratios else None,
            "cpu_ratio_median": float(np.median(cpu_ratios)) if cpu_ratios else None,
        },
        "tail_events": len(tail_lines),
        "process_peak_rss": peak_rss(),
    }


def job(args: argparse.Namespace) -> dict[str, Any]:
    """One ``recsys train --once`` as a Kubernetes Job runs it: a fresh process, one
    ``train_once`` cycle on ``--log`` (an existing log opened read-only, as
    ``run_train_once`` does), starting from whatever an earlier Job left: the log snapshot
    next to it, the selection record and the published model in Redis under ``--prefix``.

    Paired with a bare LightFM fit on ``--data`` in this same process (``--bare-first``
    alternates the order). ``import_seconds`` is the process's own start-up (importing the
    trainer), which a Job pays on top of its cycle and the in-process bare fit does not.
    """
    started = time.perf_counter()
    from redis import Redis

    from services.common.keys import Keys
    from services.common.settings import Settings
    from services.trainer import training
    from services.trainer.feedback_state import FeedbackState
    from services.trainer.interaction_log import InteractionLog

    import_seconds = time.perf_counter() - started
    settings = Settings(
        model=args.model,
        lightfm_epochs=args.epochs,
        key_prefix=args.prefix,
        redis_url=args.redis,
        data_dir=args.log.parent,
    )
    paired: dict[str, float] = {}
    if args.data is not None and args.bare_first:
        paired = bare(args)
    interaction_log = instrument(InteractionLog(args.log, read_only=True))
    state = FeedbackState(Redis.from_url(args.redis), Keys(args.prefix))
    PHASES.clear()
    reset_peak_rss()
    started, cpu = time.perf_counter(), time.process_time()
    outcome = training.train_once(settings, interaction_log, state)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    result_peak = peak_rss_since_reset()
    phases = dict(PHASES)
    if args.data is not None and not args.bare_first:
        paired = bare(args)
    PHASES.clear()
    PHASES.update(phases)
    model = outcome.model
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "import_seconds": import_seconds,
        "published": outcome.published,
        "reason": outcome.reason,
        "family": model.family if model else None,
        "events": outcome.events,
        "peak_rss": result_peak,
        "bare": paired,
        "process_peak_rss": peak_rss(),
    }


def scale(args: argparse.Namespace) -> dict[str, Any]:
    """Fit LightFM (trainer code, single family) and publish, on synthetic arrays."""
    from dataclasses import replace

    from redis import Redis

    from services.common.keys import Keys
    from services.trainer.dataset import Interactions
    from services.trainer.feedback_state import FeedbackState
    from services.trainer.models import ModelParams, fit_model
    from services.trainer.training import new_version

    data = np.load(args.data)
    n_users, n_items = int(data["n_users"]), int(data["n_items"])
    started = time.perf_counter()
    interactions = Interactions(
        [f"u{u}" for u in range(n_users)],
        [f"i{i}" for i in range(n_items)],
        data["users"].astype(np.int32),
        data["items"].astype(np.int32),
        np.where(data["likes"], 1.0, -1.0).astype(np.float32),
        np.zeros(data["users"].size),
    )
    PHASES["dataset"] += time.perf_counter() - started
    started = time.perf_counter()
    model = fit_model("lightfm", interactions, ModelParams(epochs=args.epochs, threads=2))
    PHASES["fit"] += time.perf_counter() - started
    fit_rss = peak_rss()
    model = replace(model, version=new_version(), trained_at=time.time())
    started = time.perf_counter()
    blob = model.to_bytes()
    PHASES["serialise"] += time.perf_counter() - started
    redis = Redis.from_url(args.redis)
    state = FeedbackState(redis, Keys(args.prefix))
    started = time.perf_counter()
    if not state.publish_model(model, state.epoch(), keep=1):
        raise RuntimeError("publish refused")
    PHASES["publish"] += time.perf_counter() - started
    return {
        "seconds": sum(PHASES.values()),
        "version": model.version,
        "blob_bytes": len(blob),
        "fit_peak_rss": fit_rss,
        "interactions": int(data["users"].size),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["bare", "cycle", "job", "scale"])
    parser.add_argument("--data", type=Path)
    parser.add_argument("--log", type=Path)
    parser.add_argument("--model", default="lightfm")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--prefix", default="bench:train:")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--tail", type=float, default=0.01, help="cycle: share of new lines")
    parser.add_argument("--rounds", type=int, default=3, help="cycle: steady cycles")
    parser.add_argument("--work", type=Path, default=Path("/tmp/recsys-bench/train"))
    parser.add_argument("--bare-first", action="store_true", help="job: the bare fit first")
    args = parser.parse_args()
    result = {"bare": bare, "cycle": cycle, "job": job, "scale": scale}[args.mode](args)
    result["phases"] = dict(PHASES)
    result.setdefault("peak_rss", peak_rss())
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
