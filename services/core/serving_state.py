"""Catalogue and model held in memory by the api, rebuilt when either version changes."""

from __future__ import annotations

import asyncio
import gc
import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from services.common.metrics import record_model
from services.common.serving_model import ServingModel
from services.core.serving_store import ServingStore, parse_catalogue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServingState:
    catalogue_version: int
    model_version: str | None
    item_ids: list[str]
    item_index: dict[str, int]
    genres: list[tuple[str, ...]] | None
    model: ServingModel | None
    model_item_index: dict[str, int]
    model_user_index: dict[str, int]
    model_to_catalogue: NDArray[np.int64]

    @classmethod
    def build(
        cls,
        catalogue_version: int,
        catalogue: dict[str, list[str]],
        model: ServingModel | None,
    ) -> ServingState:
        item_ids = sorted(catalogue)
        item_index = {item: i for i, item in enumerate(item_ids)}
        has_genres = any(catalogue.values())
        genres = [tuple(catalogue[i]) for i in item_ids] if has_genres else None
        model_to_catalogue = np.empty(0, dtype=np.int64)
        model_item_index: dict[str, int] = {}
        model_user_index: dict[str, int] = {}
        if model is not None:
            model_item_index = {item: i for i, item in enumerate(model.item_ids)}
            model_user_index = {user: i for i, user in enumerate(model.user_ids)}
            model_to_catalogue = np.array(
                [item_index.get(item, -1) for item in model.item_ids], dtype=np.int64
            )
        return cls(
            catalogue_version=catalogue_version,
            model_version=model.version if model else None,
            item_ids=item_ids,
            item_index=item_index,
            genres=genres,
            model=model,
            model_item_index=model_item_index,
            model_user_index=model_user_index,
            model_to_catalogue=model_to_catalogue,
        )

    def to_catalogue_scores(self, model_scores: NDArray[np.float32]) -> NDArray[np.float32]:
        """Model-indexed scores to catalogue-indexed ones; items the model lacks get NaN."""
        scores = np.full(len(self.item_ids), np.nan, dtype=np.float32)
        known = self.model_to_catalogue >= 0
        scores[self.model_to_catalogue[known]] = model_scores[known]
        return scores


EMPTY = ServingState.build(0, {}, None)


class ServingStateCache:
    """Keeps the current ServingState; reloads from the store when versions move."""

    def __init__(self, store: ServingStore) -> None:
        self._store = store
        self._state = EMPTY
        self._lock = asyncio.Lock()
        self._loaded_catalogue = -1
        self._catalogue: dict[str, list[str]] = {}

    def _is_current(self, catalogue_version: int, model_version: str | None) -> bool:
        state = self._state
        return (
            self._loaded_catalogue >= 0
            and state.catalogue_version == catalogue_version
            and state.model_version == model_version
        )

    async def get(self, catalogue_version: int, model_version: str | None) -> ServingState:
        if self._is_current(catalogue_version, model_version):
            return self._state
        async with self._lock:
            # Another request may have reloaded while this one waited for the lock.
            if self._is_current(catalogue_version, model_version):
                return self._state
            state = self._state
            model = state.model
            if model_version != state.model_version:
                model = await self._load_model(model_version) if model_version else None
            if catalogue_version == self._loaded_catalogue:
                # Only the model moved (every training cycle): the catalogue is unchanged.
                version, catalogue = self._loaded_catalogue, self._catalogue
            else:
                version, raw = await self._store.raw_catalogue()
                catalogue = await asyncio.to_thread(parse_catalogue, raw)
            self._catalogue = catalogue
            # Off the event loop: building the indexes of a large catalogue and model takes
            # tens of milliseconds of Python; in a thread, requests interleave with it.
            self._state = await asyncio.to_thread(ServingState.build, version, catalogue, model)
            self._loaded_catalogue = version
            # The state's big dicts and lists are hundreds of thousands of references a full
            # garbage collection walks each time: a 47 ms pause with a 50k-user model, every
            # request in flight waiting. Frozen objects are skipped; they hold no cycles, so
            # reference counting still frees them when the next state replaces this one.
            gc.freeze()
            return self._state

    def invalidate(self) -> None:
        self._state = EMPTY
        self._loaded_catalogue = -1

    async def _load_model(self, version: str) -> ServingModel | None:
        blob = await self._store.model_blob(version)
        if blob is None:
            log.warning("model %s announced but its blob is missing; keeping the last one", version)
            return self._state.model
        model = await asyncio.to_thread(ServingModel.from_bytes, blob)
        record_model(model.version, model.family, model.metrics, model.trained_at)
        log.info(
            "serving model %s (%s, %d items)", model.version, model.family, len(model.item_ids)
        )
        return model
