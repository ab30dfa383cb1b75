"""The /recs use case: read the user's history, score, rank, record impressions.

Ranking is done for several pages at once: the first page is answered, the rest is stored as
the user's prefetched list, and the following requests pop their page from it in one Redis
step (no scoring) until it runs out, a rating of the user empties it, or it cannot fill k.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from redis.asyncio import Redis

from services.common.keys import Keys
from services.common.metrics import PREFETCH, RECOMMENDATIONS
from services.common.settings import Settings
from services.core.bandit import (
    BanditPolicy,
    ItemStats,
    Snapshot,
    exploration_rate,
    thompson_keys,
)
from services.core.colikes import NEIGHBOURS_PER_LIKE, RECENT_LIKES, conditional_rates
from services.core.live_counts import ItemStatsCache
from services.core.new_user_variants import NewUserVariants
from services.core.ranking import (
    SOURCE_EXPLORATION,
    SOURCE_MODEL,
    SOURCE_POPULAR,
    Ranked,
    recommend,
)
from services.core.scoring import score_items, unit_scaled
from services.core.serving_state import ServingState, ServingStateCache
from services.core.serving_store import NewUser, ServingStore, UserView

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


def _decode(entries: list[bytes]) -> tuple[list[str], list[str]]:
    """Item ids and their sources from stored entries; counts the sources."""
    item_ids = [entry[1:].decode() for entry in entries]
    sources = [SOURCE_NAMES.get(entry[:1], SOURCE_MODEL) for entry in entries]
    _count(sources)
    return item_ids, sources


# Rankings shared by users with no history (services/core/new_user_variants.py).
NEW_USER_VARIANTS = 8
# Below any real difference of two posterior means, above float32 noise.
TIE_BREAK = 1e-6

NO_HISTORY = UserView(
    liked=[],
    disliked=[],
    excluded=[],
    shown=set(),
    catalogue_version=0,
    model_version=None,
    feedback_seq="0",
)


class Recommender:
    def __init__(
        self,
        store: ServingStore,
        cache: ServingStateCache,
        counts: ItemStatsCache,
        *,
        exploration_rate: float,
        prefetch_pages: int = 1,
        policy: BanditPolicy | None = None,
        personal_weight: float = 1.0,
    ):
        self.store = store
        self.cache = cache
        self.counts = counts
        self.exploration_rate = exploration_rate
        self.prefetch_pages = prefetch_pages
        self.policy = policy or BanditPolicy()
        self.personal_weight = personal_weight
        self._new_users: NewUserVariants[tuple[Ranked, list[str]]] = NewUserVariants(
            NEW_USER_VARIANTS
        )

    async def recommend(self, user_id: str, k: int) -> Recommendation:
        """k items for the user; from the prefetched list when it can fill k."""
        popped = await self.store.pop_prefetched(user_id, k)
        if isinstance(popped, list):
            _PREFETCH_HIT.inc()
            item_ids, sources = _decode(popped)
            return Recommendation(item_ids, sources, None)
        if isinstance(popped, NewUser):
            state = await self.cache.get(popped.catalogue_version, popped.model_version)
            if user_id not in state.model_user_index:
                # Nothing to read about this user: rank from the population's evidence.
                _PREFETCH_NEW_USER.inc()
                snapshot = await self.counts.get(state)
                ranked, entries = await self._new_users.get(
                    state,
                    snapshot,
                    k,
                    functools.partial(self._new_user_variant, state, snapshot, user_id, k),
                )
                return await self._serve(user_id, k, state, ranked, "0", entries)
        _PREFETCH_MISS.inc()
        return await self.rank(user_id, k)

    def _new_user_variant(
        self, state: ServingState, snapshot: Snapshot, user_id: str, k: int
    ) -> tuple[Ranked, list[str]]:
        ranked = self._rank(state, snapshot, user_id, NO_HISTORY, [], k)
        return ranked, self._entries(state, ranked)

    async def rank(self, user_id: str, k: int) -> Recommendation:
        """Rank afresh from the live history; answer k, keep the next pages prefetched."""
        state, snapshot, view, neighbours = await self._read(user_id)
        # On the event loop, unlike new users' variants: rankings are most requests of cold
        # users, and a thread ranking beside the loop made both wait for the GIL (online
        # benchmark, seed 0: /recs mean 18.4 ms and p99 129 ms with one, 10.6 and 61 without).
        ranked = self._rank(state, snapshot, user_id, view, neighbours, k)
        return await self._serve(user_id, k, state, ranked, view.feedback_seq)

    async def prefetch(self, user_id: str, k: int, ttl: float) -> int:
        """Rank the user's next pages and store them all for ``ttl`` seconds, nothing shown;
        returns how many."""
        state, snapshot, view, neighbours = await self._read(user_id)
        ranked = self._rank(state, snapshot, user_id, view, neighbours, k)
        if ranked.impressions_exhausted:
            return 0
        await self.store.record_impressions(
            user_id,
            self._entries(state, ranked),
            0,
            reset=False,
            catalogue_version=state.catalogue_version,
            with_model=state.model is not None,
            feedback_seq=view.feedback_seq,
            list_ttl=ttl,
        )
        return len(ranked.items)

    async def _read(
        self, user_id: str
    ) -> tuple[ServingState, Snapshot, UserView, list[list[tuple[str, float]]]]:
        view = await self.store.user_view(user_id)
        state = await self.cache.get(view.catalogue_version, view.model_version)
        snapshot = await self.counts.get(state)
        neighbours = await self.store.colikes(view.liked[:RECENT_LIKES], NEIGHBOURS_PER_LIKE)
        return state, snapshot, view, neighbours

    def _rank(
        self,
        state: ServingState,
        snapshot: Snapshot,
        user_id: str,
        view: UserView,
        neighbours: list[list[tuple[str, float]]],
        k: int,
    ) -> Ranked:
        n = len(state.item_ids)
        rated = np.zeros(n, dtype=bool)
        rated_ids = view.liked + view.disliked + view.excluded
        rated[[i for i in map(state.item_index.get, rated_ids) if i is not None]] = True
        shown = np.zeros(n, dtype=bool)
        shown[[i for i in map(state.item_index.get, view.shown) if i is not None]] = True
        counts = snapshot.stats
        rng = np.random.default_rng()
        if self.policy.sampled_arms > 0:
            # A fresh draw per ranking: Thompson sampling's exploration and rotation.
            population = thompson_keys(counts, self.policy, rng)
        else:
            # Equal means (the untried items, thousands of them) in a fresh random order per
            # ranking: with one order per snapshot, every user in between tried the same
            # few (measured: coverage 1.0 -> 0.54, P@10 0.12 -> 0.07).
            population = snapshot.means + rng.random(n, dtype=np.float32) * TIE_BREAK
        base = self._live_keys(state, counts, population, view, neighbours)
        lifted = None if base is population else base > population + TIE_BREAK
        personal = self._model_signal(state, user_id, view)

        def rank(depth: int) -> Ranked:
            return recommend(
                k=depth,
                base=base,
                personal=personal,
                rated=rated,
                shown=shown,
                genres=state.genres,
                exploration_rate=exploration_rate(self.exploration_rate, snapshot.untried_share),
                seed=int(rng.integers(1 << 31)),
                impressions=counts.impressions,
                personal_weight=self.personal_weight,
                page=k,
                least_shown_order=snapshot.least_shown_order,
                lifted=lifted,
            )

        ranked = rank(k * self.prefetch_pages)
        if ranked.impressions_exhausted:
            # Too few unseen items for several pages: rank one, prefetch nothing.
            ranked = rank(k)
        return ranked

    async def _serve(
        self,
        user_id: str,
        k: int,
        state: ServingState,
        ranked: Ranked,
        feedback_seq: str,
        entries: list[str] | None = None,
    ) -> Recommendation:
        """Answer the first k still unseen, record them as shown, keep the rest as the next
        pages (all in one atomic step, so parallel requests never show an item twice).
        ``entries``: the ranking's stored entries, when already built."""
        answered = await self.store.record_impressions(
            user_id,
            self._entries(state, ranked) if entries is None else entries,
            k,
            reset=ranked.impressions_exhausted,
            catalogue_version=state.catalogue_version,
            with_model=state.model is not None,
            feedback_seq=feedback_seq,
        )
        item_ids, sources = _decode(answered)
        return Recommendation(item_ids, sources, state.model_version)

    @staticmethod
    def _entries(state: ServingState, ranked: Ranked) -> list[str]:
        return [
            SOURCE_CODES[source] + state.item_ids[i]
            for i, source in zip(ranked.items, ranked.sources, strict=True)
        ]

    @staticmethod
    def _live_keys(
        state: ServingState,
        counts: ItemStats,
        base: NDArray[np.float32],
        view: UserView,
        neighbours: list[list[tuple[str, float]]],
    ) -> NDArray[np.float32]:
        """The population's keys turned into this user's chances from their live likes."""
        index = state.item_index
        rows: list[tuple[int, NDArray[np.int64], NDArray[np.float32]]] = []
        for item, others in zip(view.liked[:RECENT_LIKES], neighbours, strict=True):
            row = index.get(item)
            if row is None:
                continue
            cols = np.array([index.get(other, -1) for other, _ in others], dtype=np.int64)
            values = np.array([count for _, count in others], dtype=np.float32)
            rows.append((row, cols, values))
        if not rows:
            return base
        exposure = np.minimum(counts.impressions / max(counts.users, 1.0), 1.0)
        return conditional_rates(base, rows, counts.likes, exposure.astype(np.float32))

    @staticmethod
    def _model_signal(
        state: ServingState, user_id: str, view: UserView
    ) -> NDArray[np.float32] | None:
        """The trained model's view of the user, scaled to [0, 1] (items below its mean: 0)."""
        scores = Recommender._model_scores(state, user_id, view.liked, view.disliked)
        if scores is None:
            return None
        finite = np.isfinite(scores)
        if not finite.any():
            return None
        known = scores[finite]
        z = (scores - known.mean()) / (float(known.std()) or 1.0)
        return unit_scaled(np.clip(np.nan_to_num(z, nan=0.0), 0.0, None).astype(np.float32))

    @staticmethod
    def _model_scores(
        state: ServingState, user_id: str, liked: list[str], disliked: list[str]
    ) -> NDArray[np.float32] | None:
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


def serving_store(redis: Redis, settings: Settings) -> ServingStore:
    """The store with this deployment's key prefix and expiry settings."""
    return ServingStore(
        redis,
        Keys(settings.key_prefix),
        prefetch_ttl=settings.prefetch_ttl,
        impressions_ttl=settings.impressions_ttl,
        types=settings.feedback_types,
    )


def build_recommender(
    store: ServingStore,
    cache: ServingStateCache,
    counts: ItemStatsCache,
    settings: Settings,
    prefetch_pages: int,
) -> Recommender:
    """The Recommender as configured by the settings (the api's and the prefetcher's)."""
    return Recommender(
        store,
        cache,
        counts,
        exploration_rate=settings.exploration_rate,
        prefetch_pages=prefetch_pages,
        policy=counts.policy,
        personal_weight=settings.personal_weight,
    )


def bandit_policy(settings: Settings) -> BanditPolicy:
    return BanditPolicy(
        watched_weight=settings.bandit_watched_weight,
        prior_strength=settings.bandit_prior_strength,
        optimism=settings.bandit_prior_optimism,
        sampled_arms=0 if settings.bandit_sampler == "mean" else BanditPolicy.sampled_arms,
    )
