"""`recsys simulate` against the three real services, in a small setting."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from services.common.settings import Settings
from services.evaluation.simulator import plans, run, summary
from services.evaluation.synthetic import SyntheticConfig, generate
from tests.e2e.processes import Deployment

pytestmark = pytest.mark.e2e

USERS = 60
# Strong planted structure: four tastes, users rate mostly inside their own.
DATA = SyntheticConfig(
    users=USERS, items=80, clusters=4, mean_ratings=30, in_cluster=0.95, zipf=0.3, seed=3
)


def test_replay_against_running_services(settings: Settings, tmp_path: Path) -> None:
    ratings = generate(DATA)
    deployment = Deployment(settings, tmp_path)
    deployment.start_all()
    try:
        stats = asyncio.run(
            run(
                ratings,
                api_url=deployment.api,
                collector_url=deployment.collector,
                users=USERS,
                concurrency=8,
                rounds=3,
                batch=50,
                short_pause=0.0,
                long_pause=0.2,
                warmup=8.0,
                max_seconds=90,
                seed=1,
            )
        )
    finally:
        deployment.stop_all()
    figures = summary(stats, ratings, 10, 1.0)
    assert not stats.errors, (stats.errors, deployment.logs())
    assert figures["responses"] >= USERS  # every user asked at least once
    assert figures["short lists"] == 0 and figures["repeated items"] == 0
    assert stats.likes + stats.dislikes > 0
    # Held-out likes must show up clearly more often than in a random list.
    chance = np.mean(
        [
            sum(p.held_out.values()) / (len(ratings.item_ids) - len(p.history))
            for p in plans(ratings, USERS, 0.5, 1)
        ]
    )
    print(f"online precision {figures['online precision@k']:.3f}, chance {chance:.3f}")
    assert figures["online precision@k"] > 1.5 * chance, (figures, chance)
    assert figures["recs p95 ms"] > 0
