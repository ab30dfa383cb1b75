"""The /recs use case: read the user's history, score, rank, record impressions.

Ranking is done for several pages at once: the first page is answered, the rest is stored as
the user's prefetched list, and the following requests pop their page from it in one Redis
step (no scoring) until it runs out, a rating of the user empties it, or it cannot fill k.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from services.api.ranking import (
    SOURCE_EXPLORATION,
    SOURCE_MODEL,
    SOURCE_POPULAR,
    Ranked,
    recommend,
)
from services.api.serving_state import ServingState, ServingStateCache
from services.api.store import NewUser, ServingStore, UserView
from services.common.metrics import PREFETCH, RECOMMENDATIONS
from services.common.scoring import score_items

# One-letter source codes stored in front of each prefetched item id.
SOURCE_CODES = {source: source[0] for source in (SOURCE_MODEL, SOURCE_POPULAR, SOURCE_EXPLORATION)}
SOURCE_NAMES = {code.encode(): source for source, code in SOURCE_CODES.items()}


@dataclass(frozen=True)
class Recommendation:
    item_ids: list[str]
    sources: list[str]
    model_version: str | None


# Metric children looked up once: labels() costs a dict lookup under a lock per call.
_RECOMMENDED = {source: RECOMMENDATIONS.labels(source) for source in SOURCE_CODES}
_PREFETCH_HIT, _PREFETCH_MISS = PREFETCH.labels("hit"), PREFETCH.labels("miss")
_PREFETCH_NEW_USER = PREFETCH.labels("new_user")


def _count(sources: list[str]) -> None:
    for source in set(sources):
        _RECOMMENDED[source].inc(sources.count(source))


def _from_prefetched(entries: list[bytes]) -> tuple[list[str], list[str]]:
    """Item ids and their sources from prefetched entries; counts the sources."""
    item_ids = [entry[1:].decode() for entry in entries]
    sources = [SOURCE_NAMES.get(entry[:1], SOURCE_MODEL) for entry in entries]
    _PREFETCH_HIT.inc()
    _count(sources)
    return item_ids, sources


# Distinct lists a user with no history can get: their pages are ranked once per catalogue
# and model version and reused, so a first visit costs no scoring.
NEW_USER_VARIANTS = 64


class Recommender:
    def __init__(
        self,
        store: ServingStore,
        cache: ServingStateCache,
        exploration_rate: float,
        prefetch_pages: int = 1,
    ):
        self.store = store
        self.cache = cache
        self.exploration_rate = exploration_rate
        self.prefetch_pages = prefetch_pages
        self._new_user_pages: dict[tuple[int, str | None, int, int], Ranked] = {}

    async def recommend(self, user_id: str, k: int) -> Recommendation:
        """k items for the user; from the prefetched list when it can fill k."""
        popped = await self.store.pop_prefetched(user_id, k)
        if isinstance(popped, list):
            item_ids, sources = _from_prefetched(popped)
            return Recommendation(item_ids, sources, None)
        if isinstance(popped, NewUser):
            state = await self.cache.get(popped.catalogue_version, popped.model_version)
            if user_id not in state.model_user_index:
                _PREFETCH_NEW_USER.inc()
                ranked = self._new_user_ranking(state, user_id, k)
                return await self._serve(user_id, k, state, ranked, feedback_seq="0")
        _PREFETCH_MISS.inc()
        return await self.rank(user_id, k)

    async def rank(self, user_id: str, k: int) -> Recommendation:
        """Rank afresh from the live history; answer k, keep the next pages prefetched."""
        view = await self.store.user_view(user_id)
        state = await self.cache.get(view.catalogue_version, view.model_version)
        ranked = self._rank(state, user_id, view, k)
        return await self._serve(user_id, k, state, ranked, view.feedback_seq)

    async def prefetch(self, user_id: str, k: int) -> int:
        """Rank the user's next pages and store them all, nothing shown; returns how many."""
        view = await self.store.user_view(user_id)
        state = await self.cache.get(view.catalogue_version, view.model_version)
        ranked = self._rank(state, user_id, view, k)
        if ranked.impressions_exhausted:
            return 0
        await self.store.record_impressions(
            user_id,
            [],
            reset=False,
            prefetch=self._entries(state, ranked, 0),
            with_model=state.model is not None,
            feedback_seq=view.feedback_seq,
        )
        return len(ranked.items)

    def _rank(self, state: ServingState, user_id: str, view: UserView, k: int) -> Ranked:
        n = len(state.item_ids)
        rated = np.zeros(n, dtype=bool)
        rated[
            [i for i in map(state.item_index.get, view.liked + view.disliked) if i is not None]
        ] = True
        shown = np.zeros(n, dtype=bool)
        shown[[i for i in map(state.item_index.get, view.shown) if i is not None]] = True
        scores = self._personal_scores(state, user_id, view.liked, view.disliked)
        seed = zlib.crc32(user_id.encode()) ^ len(view.shown)
        return self._pages(state, k, scores, rated, shown, seed)

    def _new_user_ranking(self, state: ServingState, user_id: str, k: int) -> Ranked:
        variant = zlib.crc32(user_id.encode()) % NEW_USER_VARIANTS
        key = (state.catalogue_version, state.model_version, k, variant)
        ranked = self._new_user_pages.get(key)
        if ranked is None:
            if len(self._new_user_pages) >= 16 * NEW_USER_VARIANTS:
                self._new_user_pages.clear()  # older versions and rare k values
            nothing = np.zeros(len(state.item_ids), dtype=bool)
            ranked = self._pages(state, k, None, nothing, nothing, variant)
            self._new_user_pages[key] = ranked
        return ranked

    def _pages(
        self,
        state: ServingState,
        k: int,
        scores: NDArray[np.float32] | None,
        rated: NDArray[np.bool_],
        shown: NDArray[np.bool_],
        seed: int,
    ) -> Ranked:
        def rank(depth: int) -> Ranked:
            return recommend(
                k=depth,
                popularity=state.popularity,
                scores=scores,
                rated=rated,
                shown=shown,
                genres=state.genres,
                exploration_rate=self.exploration_rate,
                seed=seed,
                page=k,
            )

        ranked = rank(k * self.prefetch_pages)
        if ranked.impressions_exhausted:
            # Too few unseen items for several pages: rank one, prefetch nothing.
            ranked = rank(k)
        return ranked

    async def _serve(
        self, user_id: str, k: int, state: ServingState, ranked: Ranked, feedback_seq: str
    ) -> Recommendation:
        """Answer the first k, record them as shown and keep the rest as the next pages."""
        item_ids = [state.item_ids[i] for i in ranked.items[:k]]
        sources = ranked.sources[:k]
        await self.store.record_impressions(
            user_id,
            item_ids,
            reset=ranked.impressions_exhausted,
            prefetch=self._entries(state, ranked, k),
            with_model=state.model is not None,
            feedback_seq=feedback_seq,
        )
        _count(sources)
        return Recommendation(item_ids, sources, state.model_version)

    @staticmethod
    def _entries(state: ServingState, ranked: Ranked, start: int) -> list[str]:
        return [
            SOURCE_CODES[source] + state.item_ids[i]
            for i, source in zip(ranked.items[start:], ranked.sources[start:], strict=True)
        ]

    @staticmethod
    def _personal_scores(
        state: ServingState, user_id: str, liked: list[str], disliked: list[str]
    ) -> np.ndarray | None:  # type: ignore[type-arg]
        model = state.model
        if model is None:
            return None
        index = state.model_item_index
        liked_idx = np.array([index[i] for i in liked if i in index], dtype=np.int32)
        disliked_idx = np.array([index[i] for i in disliked if i in index], dtype=np.int32)
        scores = score_items(model, state.model_user_index.get(user_id), liked_idx, disliked_idx)
        if scores is None:
            return None
        return state.to_catalogue_scores(scores)
