"""The /recs use case: read the user's history, score, rank, record impressions."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from services.api.ranking import recommend
from services.api.serving_state import ServingState, ServingStateCache
from services.api.store import ServingStore
from services.common.metrics import RECOMMENDATIONS
from services.common.scoring import score_items


@dataclass(frozen=True)
class Recommendation:
    item_ids: list[str]
    sources: list[str]
    model_version: str | None


class Recommender:
    def __init__(self, store: ServingStore, cache: ServingStateCache, exploration_rate: float):
        self.store = store
        self.cache = cache
        self.exploration_rate = exploration_rate

    async def recommend(self, user_id: str, k: int) -> Recommendation:
        view = await self.store.user_view(user_id)
        state = await self.cache.get(view.catalogue_version, view.model_version)
        n = len(state.item_ids)
        if n == 0:
            return Recommendation([], [], state.model_version)
        rated = np.zeros(n, dtype=bool)
        rated[
            [i for i in map(state.item_index.get, view.liked + view.disliked) if i is not None]
        ] = True
        shown = np.zeros(n, dtype=bool)
        shown[[i for i in map(state.item_index.get, view.shown) if i is not None]] = True

        scores = self._personal_scores(state, user_id, view.liked, view.disliked)
        ranked = recommend(
            k=k,
            popularity=state.popularity,
            scores=scores,
            rated=rated,
            shown=shown,
            genres=state.genres,
            exploration_rate=self.exploration_rate,
            seed=zlib.crc32(user_id.encode()) ^ len(view.shown),
        )
        item_ids = [state.item_ids[i] for i in ranked.items]
        await self.store.record_impressions(user_id, item_ids, reset=ranked.impressions_exhausted)
        for source in ranked.sources:
            RECOMMENDATIONS.labels(source).inc()
        return Recommendation(item_ids, ranked.sources, state.model_version)

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
