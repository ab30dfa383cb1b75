"""Pure ranking: turn scores and a user's history into the k items to show."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from services.core.bandit import EXPLORATION_WINDOW, least_shown
from services.core.scoring import unit_scaled

# How strongly an already-covered genre pushes an item down the list. 0.3 rather than 0.6:
# in the cold-start replay P@10 rose from 0.126 to 0.141 while genre diversity stayed at
# 0.89 (bench/online_replay.py, 3,000 users).
GENRE_PENALTY = 0.3
# Candidates considered for diversity re-ranking, as a multiple of k.
POOL_FACTOR = 4

SOURCE_MODEL = "model"
SOURCE_POPULAR = "popular"
SOURCE_EXPLORATION = "exploration"


@dataclass(frozen=True)
class Ranked:
    items: list[int]
    sources: list[str]
    impressions_exhausted: bool


def exploration_slots(k: int, rate: float) -> int:
    """Exploration slots in a list of k: none for tiny lists, never the whole list."""
    if k < 2 or rate <= 0:
        return 0
    return min(k - 1, max(1, round(k * rate)))


def _diverse_order(
    ordered: NDArray[np.int64], n: int, genres: Sequence[Sequence[str]] | None, page: int
) -> list[int]:
    """The first n of ``ordered``, re-ranked page by page for genre diversity.

    Each page of ``page`` picks is diversified among the best ``POOL_FACTOR * page``
    candidates left, exactly as if the pages had been asked for one request at a time.
    """
    if genres is None or n <= 1:
        return [int(i) for i in ordered[:n]]
    rest = [int(i) for i in ordered]
    picked: list[int] = []
    while len(picked) < n and rest:
        take = min(page, n - len(picked))
        window = rest[: POOL_FACTOR * take]
        chosen = _diverse_page(window, take, genres)
        picked.extend(chosen)
        taken = set(chosen)
        rest = [i for i in window if i not in taken] + rest[POOL_FACTOR * take :]
    return picked


def _diverse_page(candidates: list[int], n: int, genres: Sequence[Sequence[str]]) -> list[int]:
    """Greedy re-ranking that trades a little rank for genres not yet in the page."""
    # Each pick only moves the candidates sharing one of its genres: found through the
    # genre's own list instead of comparing every candidate's genres (2x faster per page).
    sizes = [0] * len(candidates)
    by_genre: dict[str, list[int]] = {}
    for pos, item in enumerate(candidates):
        names = set(genres[item])
        sizes[pos] = len(names)
        for name in names:
            by_genre.setdefault(name, []).append(pos)
    # Share of each candidate's genres already in the page, summed over picks.
    overlap = [0.0] * len(candidates)
    taken = [False] * len(candidates)
    size = max(len(candidates), 1)
    picked: list[int] = []
    while len(picked) < min(n, len(candidates)):
        best_pos, best_value = -1, -np.inf
        for pos in range(len(candidates)):
            rank_value = -pos / size
            if rank_value <= best_value:
                break  # penalties only lower a value: nobody further down can win
            if taken[pos]:
                continue
            value = rank_value - GENRE_PENALTY * overlap[pos]
            if value > best_value:
                best_pos, best_value = pos, value
        taken[best_pos] = True
        picked.append(candidates[best_pos])
        shared: dict[int, int] = {}
        for name in set(genres[candidates[best_pos]]):
            for pos in by_genre[name]:
                shared[pos] = shared.get(pos, 0) + 1
        for pos, count in shared.items():
            if not taken[pos]:
                overlap[pos] += count / sizes[pos]
    return picked


def _top(key: NDArray[np.float32], mask: NDArray[np.bool_], n: int) -> NDArray[np.int64]:
    """Indices of the n best keys among ``mask``, best first."""
    candidates = np.flatnonzero(mask)
    if candidates.size == 0 or n <= 0:
        return np.empty(0, dtype=np.int64)
    values = key[candidates]
    if candidates.size > n:
        part = np.argpartition(values, candidates.size - n)[candidates.size - n :]
        candidates, values = candidates[part], values[part]
    return candidates[np.argsort(-values, kind="stable")]


def recommend(
    *,
    k: int,
    base: NDArray[np.float32],
    personal: NDArray[np.float32] | None,
    rated: NDArray[np.bool_],
    shown: NDArray[np.bool_],
    genres: Sequence[Sequence[str]] | None,
    exploration_rate: float,
    seed: int,
    impressions: NDArray[np.float32] | None = None,
    personal_weight: float = 1.0,
    page: int | None = None,
    least_shown_order: NDArray[np.int64] | None = None,
    lifted: NDArray[np.bool_] | None = None,
) -> Ranked:
    """Pick k distinct items: never rated ones, unseen ones first, some exploration.

    ``base`` ranks items for everyone (the bandit's draws: what the population reacts to).
    ``personal`` holds the user's own scores per item (NaN or 0 where there is no signal),
    or None for a user with no signal at all; scaled to at most 1 in magnitude, it is added
    to ``base`` with ``personal_weight``. Exploration slots take the least shown items by
    ``impressions`` (at random when None). ``page`` (default k) is the length of the lists
    the k items will be shown in, page after page: each page is diversified on its own and
    gets its share of exploration slots, at its end. ``least_shown_order`` (every item by
    ``impressions``, least first), when given, spares a full sort: exploration then draws
    from its first unseen items of the least shown tier (``EXPLORATION_WINDOW``).
    """
    rng = np.random.default_rng(seed)
    n_items = base.shape[0]
    unseen = ~rated & ~shown
    n_unseen = int(unseen.sum())
    exhausted = n_unseen < k
    allowed = ~rated
    k = min(k, int(allowed.sum()))
    if k <= 0:
        return Ranked([], [], exhausted)

    key = base.astype(np.float32, copy=False)
    # Items the user's own signal raised (``lifted``: by their live likes) are personal picks.
    personal_known = np.zeros(n_items, dtype=bool) if lifted is None else lifted.copy()
    if personal is not None:
        signal = np.nan_to_num(personal.astype(np.float32), nan=0.0)
        personal_known |= signal > 0
        key = key + personal_weight * unit_scaled(signal)

    page = min(page or k, k)
    page_explore = exploration_slots(page, exploration_rate) if n_unseen > k else 0
    # Personal or popular picks per page: what is left once its exploration slots are set.
    page_main = max(1, page - page_explore)
    pages = -(-k // page)
    n_explore = min(page_explore * pages, k - 1) if page_explore else 0
    n_main = k - n_explore

    picked: list[int] = []
    sources: list[str] = []
    for pool in (unseen, allowed & shown):
        need = n_main - len(picked)
        if need <= 0:
            break
        ordered = _top(key, pool, POOL_FACTOR * need)
        chosen = _diverse_order(ordered, need, genres, page_main if n_explore else page)
        picked.extend(chosen)
        sources.extend(SOURCE_MODEL if personal_known[i] else SOURCE_POPULAR for i in chosen)

    if n_explore:
        left = unseen.copy()
        left[picked] = False
        if least_shown_order is not None and impressions is not None:
            window = least_shown_order[left[least_shown_order]][:EXPLORATION_WINDOW]
            # Only the least shown tier (and the next): never an item many users ignored.
            if window.size:
                window = window[impressions[window] <= impressions[window[0]] + 1]
            if window.size >= n_explore:
                explore = rng.choice(window, size=n_explore, replace=False)
            else:  # the unseen items are nearly all shown often: the exact least shown
                explore = least_shown(impressions, left, n_explore, rng)
        elif impressions is not None:
            explore = least_shown(impressions, left, n_explore, rng)
        else:
            explore = rng.permutation(np.flatnonzero(left))[:n_explore]
        # Each page ends with its own exploration slots: they cost the list's lowest ranks.
        main_items, main_sources = picked, sources
        picked, sources = [], []
        m = e = 0
        while m < len(main_items) or e < len(explore):
            picked.extend(main_items[m : m + page_main])
            sources.extend(main_sources[m : m + page_main])
            m += page_main
            chunk = [int(i) for i in explore[e : e + page_explore]]
            picked.extend(chunk)
            sources.extend([SOURCE_EXPLORATION] * len(chunk))
            e += page_explore
    return Ranked(picked[:k], sources[:k], exhausted)
