"""Pure ranking rules: k distinct, never rated, unseen first, exploration, diversity."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.ranking import (
    SOURCE_EXPLORATION,
    SOURCE_MODEL,
    SOURCE_POPULAR,
    Ranked,
    exploration_slots,
    recommend,
)


def masks(n: int, rated: list[int], shown: list[int]) -> tuple[np.ndarray, np.ndarray]:
    r = np.zeros(n, dtype=bool)
    r[rated] = True
    s = np.zeros(n, dtype=bool)
    s[shown] = True
    return r, s


def rank(
    base: np.ndarray,
    scores: np.ndarray | None = None,
    *,
    k: int = 10,
    genres: list[list[str]] | None = None,
    rate: float = 0.0,
    seed: int = 1,
    impressions: np.ndarray | None = None,
) -> Ranked:
    """recommend() for a user with no history yet."""
    rated, shown = masks(base.shape[0], [], [])
    return recommend(
        k=k,
        base=base,
        personal=scores,
        impressions=impressions,
        rated=rated,
        shown=shown,
        genres=genres,
        exploration_rate=rate,
        seed=seed,
    )


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 60),
    k=st.integers(1, 30),
    data=st.data(),
    with_scores=st.booleans(),
    rate=st.floats(0, 1),
)
def test_rules_hold_for_any_history(n, k, data, with_scores, rate) -> None:
    rated_ids = data.draw(st.lists(st.integers(0, n - 1), unique=True))
    shown_ids = data.draw(st.lists(st.integers(0, n - 1), unique=True))
    rated, shown = masks(n, rated_ids, shown_ids)
    scores = None
    if with_scores:
        values = data.draw(
            st.lists(st.floats(-5, 5) | st.just(float("nan")), min_size=n, max_size=n)
        )
        scores = np.array(values, dtype=np.float32)
    result = recommend(
        k=k,
        base=np.arange(n, dtype=np.float32),
        personal=scores,
        rated=rated,
        shown=shown,
        genres=None,
        exploration_rate=rate,
        seed=7,
    )
    unrated = n - len(rated_ids)
    assert len(result.items) == min(k, unrated)
    assert len(set(result.items)) == len(result.items)
    assert not set(result.items) & set(rated_ids)
    unseen = set(range(n)) - set(rated_ids) - set(shown_ids)
    # Unseen items come before any repeat.
    assert set(result.items) >= unseen or len(set(result.items) & unseen) == min(k, len(unseen))
    assert result.impressions_exhausted == (len(unseen) < k)
    assert len(result.sources) == len(result.items)


def test_personal_scores_order_the_list_and_exploration_ends_each_page() -> None:
    n = 100
    scores = np.arange(n, dtype=np.float32)
    result = rank(np.zeros(n, dtype=np.float32), scores, rate=0.2)
    model_items = [
        i for i, s in zip(result.items, result.sources, strict=True) if s == SOURCE_MODEL
    ]
    assert model_items == [99, 98, 97, 96, 95, 94, 93, 92]
    assert result.sources[8:] == [SOURCE_EXPLORATION] * 2


def test_each_prefetched_page_has_its_own_exploration_slots() -> None:
    n = 200
    rated, shown = masks(n, [], [])
    result = recommend(
        k=30,
        page=10,
        base=np.arange(n, dtype=np.float32),
        personal=None,
        rated=rated,
        shown=shown,
        genres=None,
        exploration_rate=0.2,
        seed=3,
    )
    for start in (0, 10, 20):
        page = result.sources[start : start + 10]
        assert page[:8] == [SOURCE_POPULAR] * 8 and page[8:] == [SOURCE_EXPLORATION] * 2


def test_exploration_goes_to_the_least_shown_items() -> None:
    n = 100
    impressions = np.full(n, 50, dtype=np.float32)
    impressions[[3, 7]] = 0  # never shown
    impressions[[11, 13, 17]] = 1
    result = rank(np.zeros(n, dtype=np.float32), rate=0.3, impressions=impressions)
    explored = {
        i for i, s in zip(result.items, result.sources, strict=True) if s == SOURCE_EXPLORATION
    }
    assert len(explored) == 3
    assert {3, 7} < explored and explored - {3, 7} <= {11, 13, 17}


def test_a_personal_signal_lifts_items_over_the_population_keys() -> None:
    base = np.array([0.9, 0.8, 0.1, 0.0, 0.05, 0.02], dtype=np.float32)
    personal = np.array([np.nan, 0.0, 4.0, 2.0, np.nan, np.nan], dtype=np.float32)
    result = rank(base, personal, k=4)
    # 0.1 + 1.0 and 0.0 + 0.5 vs 0.9 and 0.8: the user's own signal comes first.
    assert result.items == [2, 0, 1, 3]
    assert result.sources == [SOURCE_MODEL, SOURCE_POPULAR, SOURCE_POPULAR, SOURCE_MODEL]


def test_lists_follow_the_base_keys() -> None:
    n = 500
    base = np.zeros(n, dtype=np.float32)
    base[:20] = np.linspace(1.0, 0.5, 20)
    assert rank(base).items == list(range(10))


def test_genres_are_diversified() -> None:
    n = 40
    genres = [["Drama"] if i < 30 else ["Comedy"] for i in range(n)]
    scores = np.linspace(1, 0, n).astype(np.float32)  # all dramas score higher
    plain = rank(np.zeros(n, dtype=np.float32), scores)
    diverse = rank(np.zeros(n, dtype=np.float32), scores, genres=genres)
    assert all(i < 30 for i in plain.items)
    assert sum(i >= 30 for i in diverse.items) >= 3


def test_exploration_slots() -> None:
    assert exploration_slots(1, 0.5) == 0
    assert exploration_slots(10, 0.0) == 0
    assert exploration_slots(10, 0.2) == 2
    assert exploration_slots(3, 1.0) == 2


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(45, 120), k=st.integers(2, 10))
def test_a_deep_ranking_equals_its_pages_asked_one_at_a_time(seed: int, n: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    names = ["drama", "comedy", "horror", "noir"]
    genres = [tuple(rng.choice(names, size=rng.integers(1, 3), replace=False)) for _ in range(n)]
    scores = rng.standard_normal(n).astype(np.float32)
    rated, shown = masks(n, list(rng.choice(n, 5, replace=False)), [])
    common = {
        "base": np.ones(n, dtype=np.float32),
        "personal": scores,
        "rated": rated,
        "genres": genres,
        "exploration_rate": 0.0,
        "seed": 0,
    }
    pages = 4
    deep = recommend(k=k * pages, page=k, shown=shown, **common)  # type: ignore[arg-type]
    one_by_one: list[int] = []
    for _ in range(pages):
        now_shown = shown.copy()
        now_shown[one_by_one] = True
        one_by_one += recommend(k=k, shown=now_shown, **common).items  # type: ignore[arg-type]
    assert deep.items == one_by_one


@settings(max_examples=60, deadline=None)
@given(n=st.integers(12, 80), k=st.integers(2, 10), seed=st.integers(0, 1000), data=st.data())
def test_a_snapshots_orders_give_full_lists_of_unseen_items(n, k, seed, data) -> None:
    rng = np.random.default_rng(seed)
    impressions = rng.integers(0, 4, size=n).astype(np.float32)
    base = rng.random(n).astype(np.float32)
    rated, shown = masks(
        n, [], data.draw(st.lists(st.integers(0, n - 1), unique=True, max_size=n // 2))
    )
    result = recommend(
        k=k,
        base=base,
        personal=None,
        rated=rated,
        shown=shown,
        genres=None,
        exploration_rate=0.3,
        seed=seed,
        impressions=impressions,
        least_shown_order=np.argsort(impressions, kind="stable").astype(np.int64),
    )
    unseen = int((~shown).sum())
    assert len(result.items) == k == len(set(result.items))
    if unseen >= k:
        assert not shown[result.items].any()
