"""Pure ranking rules: k distinct, never rated, unseen first, exploration, diversity."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from services.api.ranking import (
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
    popularity: np.ndarray,
    scores: np.ndarray | None = None,
    *,
    k: int = 10,
    genres: list[list[str]] | None = None,
    rate: float = 0.0,
    seed: int = 1,
) -> Ranked:
    """recommend() for a user with no history yet."""
    rated, shown = masks(popularity.shape[0], [], [])
    return recommend(
        k=k,
        popularity=popularity,
        scores=scores,
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
        popularity=np.arange(n, dtype=np.float32),
        scores=scores,
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


def test_model_scores_order_the_list_and_exploration_is_added() -> None:
    n = 100
    scores = np.arange(n, dtype=np.float32)
    result = rank(np.ones(n, dtype=np.float32), scores, rate=0.2)
    model_items = [
        i for i, s in zip(result.items, result.sources, strict=True) if s == SOURCE_MODEL
    ]
    assert model_items == [99, 98, 97, 96, 95, 94, 93, 92]
    assert result.sources.count(SOURCE_EXPLORATION) == 2
    assert result.sources[0] == SOURCE_MODEL  # exploration never takes the top slot


def test_items_unknown_to_the_model_fall_back_to_popularity() -> None:
    scores = np.array([np.nan, 1.0, np.nan, 2.0, np.nan, np.nan], dtype=np.float32)
    popularity = np.array([5, 0, 1, 0, 9, 0], dtype=np.float32)
    result = rank(popularity, scores, k=4)
    assert result.items == [3, 1, 4, 0]
    assert result.sources == [SOURCE_MODEL, SOURCE_MODEL, SOURCE_POPULAR, SOURCE_POPULAR]


def test_cold_lists_rotate_with_the_seed_but_favour_popular_items() -> None:
    n = 500
    popularity = np.zeros(n, dtype=np.float32)
    popularity[:20] = 1000
    lists = [rank(popularity, seed=seed).items for seed in range(10)]
    assert len({tuple(x) for x in lists}) > 5
    assert all(i < 20 for items in lists for i in items)


def test_genres_are_diversified() -> None:
    n = 40
    genres = [["Drama"] if i < 30 else ["Comedy"] for i in range(n)]
    scores = np.linspace(1, 0, n).astype(np.float32)  # all dramas score higher
    plain = rank(np.ones(n, dtype=np.float32), scores)
    diverse = rank(np.ones(n, dtype=np.float32), scores, genres=genres)
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
        "popularity": np.ones(n, dtype=np.float32),
        "scores": scores,
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
