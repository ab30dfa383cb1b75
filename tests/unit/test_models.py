"""Model families: shapes every family must fill, EASE's algebra, fallbacks."""

from __future__ import annotations

import numpy as np
import pytest

from services.evaluation.synthetic import SyntheticConfig, generate
from services.trainer.dataset import Interactions, from_triples
from services.trainer.models import FAMILIES, ModelParams, fit_model
from services.trainer.models.base import cooccurrence_neighbours, popularity, top_m_dense
from services.trainer.models.ease import ease_weights

FAST = ModelParams(components=8, epochs=5, neighbours=10)


@pytest.fixture(scope="module")
def data() -> Interactions:
    ratings = generate(SyntheticConfig(users=150, items=120, clusters=4, mean_ratings=20, seed=1))
    return ratings.interactions("threshold")


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_fills_the_serving_fields(family: str, data: Interactions) -> None:
    model = fit_model(family, data, FAST)
    n = len(data.item_ids)
    assert model.family == family and model.version == ""
    assert model.item_ids == data.item_ids and model.user_ids == data.user_ids
    assert model.popularity.shape == (n,) and model.popularity.dtype == np.float32
    assert model.neighbor_idx.shape == (n, FAST.neighbours)
    assert model.neighbor_idx.dtype == np.int32 and model.neighbor_weight.dtype == np.float32
    assert ((model.neighbor_idx >= -1) & (model.neighbor_idx < n)).all()
    # Padding carries no weight, and no item is its own neighbour.
    assert (model.neighbor_weight[model.neighbor_idx == -1] == 0).all()
    assert not (model.neighbor_idx == np.arange(n)[:, None]).any()
    assert (model.neighbor_idx[:, 0] >= 0).mean() > 0.5
    assert model.metrics["fit_seconds"] >= 0
    if family == "lightfm":
        assert model.user_factors is not None and model.user_factors.shape == (
            len(data.user_ids),
            8,
        )
        assert model.item_factors is not None and model.item_factors.shape == (n, 8)
        assert model.item_bias is not None and model.item_bias.shape == (n,)


def test_ease_matches_per_column_ridge_regression() -> None:
    """Column j of B is the ridge regression of item j on the other items (the EASE objective)."""
    rng = np.random.default_rng(0)
    x = (rng.random((40, 6)) < 0.4).astype(np.float64)
    lam = 3.0
    b = ease_weights(x.T @ x, lam)
    assert np.allclose(np.diag(b), 0.0)
    for j in range(6):
        others = [i for i in range(6) if i != j]
        a = x[:, others]
        expected = np.linalg.solve(a.T @ a + lam * np.eye(5), a.T @ x[:, j])
        assert np.allclose(b[others, j], expected, atol=1e-8)


def test_ease_cap_keeps_every_item_reachable(data: Interactions) -> None:
    capped = fit_model("ease", data, ModelParams(neighbours=10, ease_max_items=30))
    n = len(data.item_ids)
    assert capped.neighbor_idx.shape == (n, 10)
    liked_items = np.unique(data.items[data.values > 0])
    assert (capped.neighbor_idx[liked_items, 0] >= 0).mean() > 0.8


def test_popularity_counts_likes_over_dislikes() -> None:
    data = from_triples(
        [("a", "x", 1, 1), ("b", "x", 1, 1), ("c", "x", -1, 1), ("a", "y", 1, 1), ("b", "z", -1, 1)]
    )
    pop = popularity(data)
    # x: 2 likes - 0.5 * 1 dislike = 1.5 (top, scaled to 1); y: 1 like; z: floored at 0.
    assert pop.tolist() == pytest.approx([1.0, 1 / 1.5, 0.0])


def test_top_m_and_cooccurrence() -> None:
    block = np.array([[0.0, 0.5, -0.9, 0.2], [0.1, 0.0, 0.0, 0.0]])
    idx, w = top_m_dense(block, 2)
    assert idx.tolist() == [[1, 3], [0, -1]]
    idx, w = top_m_dense(block, 2, signed=True)
    assert idx[0].tolist() == [1, 2] and w[0].tolist() == pytest.approx([0.5, -0.9])
    data = from_triples([("a", "x", 1, 1), ("a", "y", 1, 1), ("b", "x", 1, 1), ("b", "z", 1, 1)])
    idx, w = cooccurrence_neighbours(data.matrix(), 2)
    # x co-occurs once with y and once with z; cosine = 1 / sqrt(2 * 1).
    assert sorted(idx[0].tolist()) == [1, 2]
    assert w[0].tolist() == pytest.approx([1 / np.sqrt(2)] * 2)
    assert idx[1].tolist() == [0, -1]


def test_empty_and_dislike_only_data_fall_back_to_popularity() -> None:
    empty = from_triples([], item_ids=["a", "b"])
    for family in FAMILIES:
        model = fit_model(family, empty, FAST)
        assert model.family == "popularity"
        assert model.popularity.tolist() == [0.0, 0.0]
    dislikes = from_triples([("u", "a", -1, 1)])
    assert fit_model("lightfm", dislikes, FAST).family == "popularity"
    with pytest.raises(ValueError, match="unknown model family"):
        fit_model("bogus", empty, FAST)
