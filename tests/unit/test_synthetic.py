"""Synthetic data has the planted structure, and the models recover it well above popularity."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from services.evaluation.datasets import Ratings
from services.evaluation.synthetic import SyntheticConfig, generate
from services.trainer.models import ModelParams, fit_model
from services.trainer.splits import stratified_split, temporal_split
from services.trainer.validation import evaluate_model

CONFIG = SyntheticConfig(users=500, items=400, clusters=8, mean_ratings=30, seed=3)
PARAMS = ModelParams(components=32, epochs=20, neighbours=50)


@pytest.fixture(scope="module")
def ratings() -> Ratings:
    return generate(CONFIG)


def test_seeded_and_unique(ratings: Ratings) -> None:
    again = generate(CONFIG)
    np.testing.assert_array_equal(ratings.users, again.users)
    np.testing.assert_array_equal(ratings.ratings, again.ratings)
    assert not np.array_equal(
        ratings.items, generate(replace(CONFIG, seed=4)).items[: len(ratings)]
    )
    pairs = ratings.users.astype(np.int64) * len(ratings.item_ids) + ratings.items
    assert np.unique(pairs).size == len(ratings)
    assert set(np.unique(ratings.ratings).tolist()) == {1.0, 5.0}
    assert all(ratings.genres[item] for item in ratings.item_ids)


def test_popularity_is_skewed_and_both_likes_and_dislikes_exist(ratings: Ratings) -> None:
    counts = np.sort(np.bincount(ratings.items, minlength=len(ratings.item_ids)))[::-1]
    top_decile = counts[: len(counts) // 10].sum() / counts.sum()
    assert top_decile > 0.25  # uniform would give 0.10
    assert 0.5 < ratings.likes().mean() < 0.9


def test_interactions_feedback_modes(ratings: Ratings) -> None:
    assert (ratings.interactions("all").values == 1).all()
    values = ratings.interactions("threshold").values
    assert set(np.unique(values).tolist()) == {-1.0, 1.0}
    assert (values > 0).sum() == ratings.likes().sum()


def test_scales_to_many_interactions() -> None:
    big = generate(SyntheticConfig(users=5000, items=5000, mean_ratings=60, seed=1))
    assert len(big) > 200_000


@pytest.mark.parametrize("family", ["ease", "lightfm"])
def test_models_recover_the_clusters_well_above_popularity(ratings: Ratings, family: str) -> None:
    train, test = stratified_split(ratings.interactions("threshold"), 0.25, seed=1)
    popular = fit_model("popularity", train, PARAMS)
    popular = replace(popular, neighbor_idx=np.full_like(popular.neighbor_idx, -1))
    baseline = evaluate_model(popular, train, test)["ndcg@10"]
    score = evaluate_model(fit_model(family, train, PARAMS), train, test)["ndcg@10"]
    assert score > 1.5 * baseline, (family, score, baseline)


def test_splits_keep_id_spaces_and_proportions(ratings: Ratings) -> None:
    data = ratings.interactions("all")
    train, test = stratified_split(data, 0.25, seed=0)
    assert train.user_ids == data.user_ids and test.item_ids == data.item_ids
    assert len(train) + len(test) == len(data)
    per_user_test = np.bincount(test.users, minlength=len(data.user_ids))
    per_user_all = np.bincount(data.users, minlength=len(data.user_ids))
    np.testing.assert_array_equal(per_user_test, np.floor(per_user_all * 0.25 + 0.5))
    assert len(test) / len(data) == pytest.approx(0.25, abs=0.02)
    # No (user, item) pair is in both halves.
    key = lambda d: set(zip(d.users.tolist(), d.items.tolist(), strict=True))  # noqa: E731
    assert not key(train) & key(test)


def test_temporal_split_holds_out_each_users_latest(ratings: Ratings) -> None:
    data = ratings.interactions("all")
    train, test = temporal_split(data, 0.25)
    for user in range(0, len(data.user_ids), 37):
        seen = train.timestamps[train.users == user]
        later = test.timestamps[test.users == user]
        if seen.size and later.size:
            assert seen.max() <= later.min()
    # A single rating stays in training (at least one training row per user).
    assert len(temporal_split(data.subset(np.arange(len(data)) == 0), 0.5)[1]) == 0
