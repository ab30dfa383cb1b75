"""Model selection: picks by validation NDCG, survives tiny data."""

from __future__ import annotations

import pytest

from services.evaluation.synthetic import SyntheticConfig, generate
from services.trainer.dataset import from_triples
from services.trainer.models import ModelParams, fit_model
from services.trainer.selection import select_model

FAST = ModelParams(components=16, epochs=10, neighbours=30)


@pytest.fixture(scope="module")
def ratings():  # type: ignore[no-untyped-def]
    return generate(SyntheticConfig(users=300, items=200, clusters=5, mean_ratings=25, seed=11))


def test_picks_a_personalised_model_and_records_scores(ratings) -> None:  # type: ignore[no-untyped-def]
    model, report = select_model(ratings.interactions("threshold"), FAST)
    assert set(report["scores"]) == {"ease", "lightfm", "popularity"}
    assert report["chosen"] == max(report["scores"], key=report["scores"].get)
    assert model.family == report["chosen"]
    for key in ("ndcg@10", "precision@10", "recall@10", "map@10", "coverage"):
        assert key in model.metrics
    for family, score in report["scores"].items():
        assert model.metrics[f"ndcg@10.{family}"] == pytest.approx(score, abs=1e-6)
    # The winner is refitted on all data, not the training part only.
    assert model.user_ids == ratings.interactions().user_ids


def test_tiny_and_empty_data() -> None:
    tiny = from_triples(
        [("a", "x", 1, 1), ("a", "y", 1, 2), ("a", "w", 1, 3), ("b", "x", 1, 3),
         ("b", "v", 1, 4), ("b", "y", -1, 5), ("c", "z", -1, 4)],
        item_ids=["x", "y", "z", "w", "v"],
    )  # fmt: skip
    model, report = select_model(tiny, FAST)
    assert model.item_ids == tiny.item_ids and report["chosen"] == model.family
    model, report = select_model(from_triples([]), FAST)
    assert model.family == "popularity" and model.item_ids == []
    model, _ = select_model(from_triples([], item_ids=["a"]), FAST)
    assert model.family == "popularity" and model.popularity.tolist() == [0.0]
    with pytest.raises(ValueError):
        select_model(tiny, FAST, families=("nope",))


def test_fit_model_and_selection_agree_on_ids(ratings) -> None:  # type: ignore[no-untyped-def]
    data = ratings.interactions("all")
    assert fit_model("popularity", data, FAST).item_ids == data.item_ids
