"""A serving instance with a published model, a catalogue and users' ratings in Redis.

The model is fitted by the trainer's own code (``fit_model``) on synthetic data and
published with ``FeedbackState.publish_model``; the catalogue goes in through ``/add_items``
as a client would send it. Fitted models are cached on disk between runs (the serving
benchmark measures serving, not fitting).
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import numpy as np
from redis import Redis

from bench.lib import REDIS_URL, ROOT, WORK, Instance, log
from services.common.events import StoredEvent
from services.common.keys import Keys
from services.common.serving_model import ServingModel
from services.evaluation.datasets import Ratings
from services.evaluation.synthetic import SyntheticConfig, generate
from services.trainer.feedback_state import FeedbackState
from services.trainer.models import ModelParams, fit_model
from services.trainer.training import new_version

CACHE = WORK / "cache"


@dataclass
class ServingSetup:
    instance: Instance
    ratings: Ratings
    model: ServingModel
    seconds: float
    prefetch_seconds: float = 0.0
    prefetch_redis_bytes: int = 0


def synthetic(users: int, items: int, mean_ratings: float, seed: int = 7) -> Ratings:
    return generate(
        SyntheticConfig(
            users=users,
            items=items,
            clusters=max(10, items // 400),
            mean_ratings=mean_ratings,
            seed=seed,
        )
    )


def cached_model(ratings: Ratings, family: str, epochs: int, tag: str) -> ServingModel:
    path: Path = CACHE / f"model-{tag}-{family}-{epochs}.npz"
    if path.exists():
        return ServingModel.from_bytes(path.read_bytes())
    started = time.perf_counter()
    model = fit_model(
        family, ratings.interactions("threshold"), ModelParams(epochs=epochs, components=64)
    )
    log(f"  fitted {family} ({epochs} epochs) in {time.perf_counter() - started:.1f}s")
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.to_bytes())
    return model


def publish(instance: Instance, model: ServingModel) -> ServingModel:
    redis = Redis.from_url(REDIS_URL)
    state = FeedbackState(redis, Keys(instance.prefix))
    model = replace(model, version=new_version(), trained_at=time.time())
    if not state.publish_model(model, state.epoch(), keep=2):
        raise RuntimeError("publish refused")
    redis.close()
    return model


def write_ratings(instance: Instance, ratings: Ratings) -> None:
    """Every user's ratings into Redis through the ingester's own FeedbackState.apply."""
    redis = Redis.from_url(REDIS_URL)
    state = FeedbackState(redis, Keys(instance.prefix))
    order = np.argsort(ratings.users, kind="stable")
    users, items = ratings.users[order], ratings.items[order]
    likes = ratings.likes()[order]
    stamps = ratings.timestamps[order]
    bounds = np.flatnonzero(np.diff(users)) + 1
    starts = np.concatenate([[0], bounds])
    stops = np.concatenate([bounds, [users.size]])
    batch: list[StoredEvent] = []
    for start, stop in zip(starts, stops, strict=True):
        batch.append(
            StoredEvent(
                event_id=f"seed-{users[start]}",
                user_id=ratings.user_ids[users[start]],
                item_ids=[ratings.item_ids[i] for i in items[start:stop]],
                actions=["like" if x else "dislike" for x in likes[start:stop]],
                timestamp=float(stamps[start:stop].max()),
            )
        )
        if len(batch) >= 2000:
            state.apply(batch)
            batch = []
    if batch:
        state.apply(batch)
    redis.close()


def add_catalogue(instance: Instance, ratings: Ratings, batch: int = 5000) -> None:
    with httpx.Client(base_url=instance.api, timeout=60) as client:
        ids = ratings.item_ids
        for start in range(0, len(ids), batch):
            chunk = ids[start : start + batch]
            body = {"item_ids": chunk, "genres": [ratings.genres.get(i, []) for i in chunk]}
            client.post("/add_items", json=body).raise_for_status()


def serving_instance(
    users: int, items: int, *, mean_ratings: float, epochs: int, components: tuple[str, ...]
) -> ServingSetup:
    """Start the components, publish a model, load the catalogue, seed ratings, warm up."""
    started = time.perf_counter()
    ratings = synthetic(users, items, mean_ratings)
    log(f"  synthetic data: {len(ratings):,} ratings, {users:,} users, {items:,} items")
    model = cached_model(ratings, "lightfm", epochs, f"{users}x{items}x{mean_ratings}")
    instance = Instance("serve")
    try:
        for component in components:
            instance.start(component)
        instance.wait_healthy(instance.api)
        model = publish(instance, model)
        add_catalogue(instance, ratings)
        write_ratings(instance, ratings)
        prefetch_seconds, prefetch_bytes = prefetch(instance, len(ratings.user_ids))
        with httpx.Client(base_url=instance.api, timeout=30) as client:
            for user in range(20):  # first request loads the model
                client.get(f"/recs/u{user}").raise_for_status()
            info = client.get("/recs/u1?explain=true").json()
            if info.get("model_version") != model.version:
                raise RuntimeError(f"api does not serve the published model: {info}")
    except BaseException:
        instance.close()
        raise
    return ServingSetup(
        instance, ratings, model, time.perf_counter() - started, prefetch_seconds, prefetch_bytes
    )


def prefetch(instance: Instance, users: int) -> tuple[float, int]:
    """What the trainer does after publishing: rank active users' next pages ahead.

    Returns the seconds it took and the Redis memory the lists added (bytes)."""
    redis = Redis.from_url(REDIS_URL)
    memory_before = int(redis.info("memory")["used_memory"])
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "services.cli", "prefetch", "--users", str(users)],
        env=instance.env(),
        cwd=ROOT,
        check=True,
        timeout=1800,
    )
    seconds = time.perf_counter() - started
    added = int(redis.info("memory")["used_memory"]) - memory_before
    redis.close()
    log(f"  prefetched {users:,} users' next pages in {seconds:.0f}s, +{added / 2**20:.0f} MiB")
    return seconds, added
