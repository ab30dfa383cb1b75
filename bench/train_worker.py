"""One measured training step in its own process, so its peak memory is its own.

    python -m bench.train_worker bare  --data D.npz --epochs E
    python -m bench.train_worker cycle --log L --model lightfm|auto --epochs E --prefix P
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
    started = time.perf_counter()
    model.fit(positives, epochs=args.epochs, num_threads=settings.train_threads)
    return {"seconds": time.perf_counter() - started, "likes": int(positives.nnz)}


def cycle(args: argparse.Namespace) -> dict[str, Any]:
    """``train_once`` as the trainer runs it, phases timed by wrapping the functions it calls."""
    from redis import Redis

    from services.common.keys import Keys
    from services.common.settings import Settings
    from services.trainer import selection, training
    from services.trainer.feedback_state import FeedbackState
    from services.trainer.interaction_log import InteractionLog
    from services.trainer.models import lightfm_model

    settings = Settings(
        model=args.model,
        lightfm_epochs=args.epochs,
        key_prefix=args.prefix,
        redis_url=args.redis,
        data_dir=args.log.parent,
    )
    from_events = training.from_events

    def dataset_timed(*args: Any, **kwargs: Any) -> Any:
        """Dataset time without the log reading a streamed cycle does inside it."""
        read_before, started = PHASES["read log"], time.perf_counter()
        result = from_events(*args, **kwargs)
        reading = PHASES["read log"] - read_before
        PHASES["dataset"] += time.perf_counter() - started - reading
        return result

    training.from_events = dataset_timed
    selection.fit_model = timed("fit (all families, incl. neighbours)", selection.fit_model)
    selection.evaluate_model = timed("validation scoring", selection.evaluate_model)
    selection.temporal_split = timed("validation split", selection.temporal_split)
    lightfm_model.ease_neighbours = timed("neighbours (EASE top-M)", lightfm_model.ease_neighbours)
    FeedbackState.publish_model = timed("publish (serialise + Redis)", FeedbackState.publish_model)
    interaction_log = InteractionLog(args.log, read_only=True)
    read = interaction_log.read

    def read_timed() -> Any:
        """Time spent inside the log reader, however the cycle consumes it."""
        events = read()
        while True:
            started = time.perf_counter()
            try:
                event = next(events)
            except StopIteration:
                PHASES["read log"] += time.perf_counter() - started
                return
            PHASES["read log"] += time.perf_counter() - started
            yield event

    interaction_log.read = read_timed  # type: ignore[method-assign]
    redis = Redis.from_url(args.redis)
    state = FeedbackState(redis, Keys(args.prefix))
    started = time.perf_counter()
    outcome = training.train_once(settings, interaction_log, state)
    seconds = time.perf_counter() - started
    model = outcome.model
    return {
        "seconds": seconds,
        "published": outcome.published,
        "family": model.family if model else None,
        "events": outcome.events,
        "blob_bytes": len(model.to_bytes()) if model else 0,
        "metrics": {k: v for k, v in (model.metrics if model else {}).items() if "ndcg" in k},
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
    parser.add_argument("mode", choices=["bare", "cycle", "scale"])
    parser.add_argument("--data", type=Path)
    parser.add_argument("--log", type=Path)
    parser.add_argument("--model", default="lightfm")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--prefix", default="bench:train:")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    result = {"bare": bare, "cycle": cycle, "scale": scale}[args.mode](args)
    result["phases"] = dict(PHASES)
    result["peak_rss"] = peak_rss()
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
