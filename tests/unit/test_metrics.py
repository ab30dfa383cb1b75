"""Ranking metrics against values worked out by hand."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.core.ranking_metrics import (
    coverage,
    genre_diversity,
    map_at_k,
    ndcg_at_k,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
)

# User 0: hits at ranks 2 and 4 of 4, three relevant items. User 1: hit at rank 1, one relevant.
RECS = [[1, 2, 3, 4], [5, 6, 7, 8]]
RELEVANT = [{2, 4, 9}, {5}]
DCG0 = 1 / math.log2(3) + 1 / math.log2(5)
IDCG0 = 1 + 1 / math.log2(3) + 1 / math.log2(4)


def test_precision() -> None:
    assert precision_at_k(RECS, RELEVANT, k=4) == pytest.approx((2 / 4 + 1 / 4) / 2)


def test_recall() -> None:
    assert recall_at_k(RECS, RELEVANT, k=4) == pytest.approx((2 / 3 + 1) / 2)


def test_ndcg() -> None:
    assert ndcg_at_k(RECS, RELEVANT, k=4) == pytest.approx((DCG0 / IDCG0 + 1) / 2)
    assert pytest.approx(0.498190, abs=1e-6) == DCG0 / IDCG0


def test_map() -> None:
    # User 0: precision 1/2 at rank 2 and 2/4 at rank 4, over min(3, 4) relevant.
    assert map_at_k(RECS, RELEVANT, k=4) == pytest.approx(((0.5 + 0.5) / 3 + 1) / 2)


def test_cutoff_ignores_items_below_k() -> None:
    assert precision_at_k(RECS, RELEVANT, k=1) == pytest.approx((0 + 1) / 2)
    assert ndcg_at_k([[9, 2]], [{2}], k=1) == 0.0


def test_coverage_and_diversity() -> None:
    assert coverage(RECS, n_items=10, k=4) == pytest.approx(0.8)
    assert coverage(RECS, n_items=10, k=1) == pytest.approx(0.2)
    genres = {1: ["A"], 2: ["A", "B"], 3: ["C"]}
    # Pairs: (1,2) 1 - 1/2, (1,3) 1, (2,3) 1; item 4 has no genres and is skipped.
    assert genre_diversity([[1, 2, 3, 4]], genres, k=4) == pytest.approx(2.5 / 3)
    assert genre_diversity([[1, 1]], genres, k=2) == 0.0


def test_ranking_metrics_keys_and_mismatch() -> None:
    out = ranking_metrics(RECS, RELEVANT, n_items=10, k=4, genres={})
    assert set(out) == {"precision@4", "recall@4", "ndcg@4", "map@4", "coverage", "diversity"}
    with pytest.raises(ValueError):
        precision_at_k(RECS, RELEVANT[:1])
    assert precision_at_k([], []) == 0.0


@given(
    st.lists(
        st.tuples(
            st.lists(st.integers(0, 30), min_size=1, max_size=12, unique=True),
            st.sets(st.integers(0, 30), min_size=1, max_size=10),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_bounds_and_perfect_ranking(cases: list[tuple[list[int], set[int]]]) -> None:
    recs = [r for r, _ in cases]
    relevant = [rel for _, rel in cases]
    for metric in (precision_at_k, recall_at_k, ndcg_at_k, map_at_k):
        assert 0.0 <= metric(recs, relevant, 10) <= 1.0 + 1e-12
    perfect = [sorted(rel) for rel in relevant]
    assert ndcg_at_k(perfect, relevant, 10) == pytest.approx(1.0)
    assert map_at_k(perfect, relevant, 10) == pytest.approx(1.0)
