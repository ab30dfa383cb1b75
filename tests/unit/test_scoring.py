"""The scoring path: personal scores, freshness (a like moves the list now), cold users."""

from __future__ import annotations

import numpy as np
import pytest

from services.common.serving_model import ServingModel
from services.core.scoring import score_items
from services.evaluation.synthetic import SyntheticConfig, generate
from services.trainer.models import ModelParams, fit_model

NONE = np.array([], dtype=np.int32)
FAST = ModelParams(components=16, epochs=10, neighbours=20)


def ints(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int32)


def toy_model(family: str = "ease") -> ServingModel:
    """Six items; item 0's neighbours are 1 and 2, item 3's are 4 and 5; item 5 is most popular."""
    idx = np.full((6, 2), -1, dtype=np.int32)
    weight = np.zeros((6, 2), dtype=np.float32)
    idx[0], weight[0] = [1, 2], [0.9, 0.5]
    idx[3], weight[3] = [4, 5], [0.8, 0.4]
    return ServingModel(
        version="v",
        family=family,
        trained_at=0.0,
        item_ids=[f"i{i}" for i in range(6)],
        popularity=np.array([0.1, 0.2, 0.3, 0.4, 0.5, 1.0], dtype=np.float32),
        neighbor_idx=idx,
        neighbor_weight=weight,
    )


def rank_of(scores: np.ndarray, item: int, exclude: np.ndarray = NONE) -> int:
    s = scores.astype(np.float64).copy()
    s[exclude] = -np.inf
    return int((s > s[item]).sum())


@pytest.fixture(scope="module")
def lightfm_model() -> ServingModel:
    data = generate(SyntheticConfig(users=300, items=200, clusters=5, mean_ratings=25, seed=5))
    return fit_model("lightfm", data.interactions("threshold"), FAST)


def test_no_signal_is_none() -> None:
    assert score_items(toy_model(), None, NONE, NONE) is None
    # Out-of-range indices (an item deleted since) are ignored, not an error.
    assert score_items(toy_model(), None, ints(99, -1), NONE) is None


@pytest.mark.parametrize("family", ["ease", "popularity"])
def test_one_like_makes_a_cold_user_warm(family: str) -> None:
    scores = score_items(toy_model(family), None, ints(0), NONE)
    assert scores is not None and scores.shape == (6,)
    liked = ints(0)
    popularity = toy_model(family).popularity
    # The strongest neighbour goes to the top; both neighbours climb above their popularity rank.
    assert rank_of(scores, 1, liked) == 0
    for item in (1, 2):
        assert rank_of(scores, item, liked) < rank_of(popularity, item, liked)
    if family == "ease":  # neighbour models rank by the neighbour sum alone
        assert rank_of(scores, 2, liked) == 1


def test_dislike_pushes_neighbours_down() -> None:
    model = toy_model()
    before = score_items(model, None, ints(0), NONE)
    after = score_items(model, None, ints(0), ints(3))
    assert before is not None and after is not None
    assert after[4] < before[4] and after[5] < before[5]
    assert after[1] == pytest.approx(before[1])


def test_fresh_like_moves_a_known_user_toward_the_item(lightfm_model: ServingModel) -> None:
    model = lightfm_model
    user = 0
    liked = np.flatnonzero(np.arange(len(model.item_ids)) % 17 == 0).astype(np.int32)[:3]
    before = score_items(model, user, liked, NONE)
    assert before is not None
    # Like the item this user currently ranks lowest: its neighbours must climb.
    new = int(np.argmin(before))
    after = score_items(model, user, np.append(liked, new).astype(np.int32), NONE)
    assert after is not None
    neighbours = model.neighbor_idx[new][model.neighbor_weight[new] > 0][:5]
    assert neighbours.size > 0
    exclude = np.append(liked, new).astype(np.int32)
    moved = [rank_of(after, int(i), exclude) - rank_of(before, int(i), exclude) for i in neighbours]
    assert sum(moved) < 0, moved


def test_cold_user_fold_in_uses_factors(lightfm_model: ServingModel) -> None:
    model = lightfm_model
    assert score_items(model, None, NONE, NONE) is None
    scores = score_items(model, None, ints(3), NONE)
    assert scores is not None
    # The fold-in follows the item vector: the liked item's closest factor neighbour beats average.
    assert model.item_factors is not None
    sims = model.item_factors @ model.item_factors[3]
    sims[3] = -np.inf
    assert scores[int(np.argmax(sims))] > np.median(scores)


def test_known_user_without_ratings_scores_from_factors(lightfm_model: ServingModel) -> None:
    scores = score_items(lightfm_model, 1, NONE, NONE)
    assert scores is not None and np.isfinite(scores).all()
    # An unknown index behaves as a cold user.
    assert score_items(lightfm_model, 10**6, NONE, NONE) is None


def test_round_trip_scores_identically(lightfm_model: ServingModel) -> None:
    again = ServingModel.from_bytes(lightfm_model.to_bytes())
    a = score_items(lightfm_model, 2, ints(1, 2), ints(5))
    b = score_items(again, 2, ints(1, 2), ints(5))
    assert a is not None and b is not None
    np.testing.assert_array_equal(a, b)
