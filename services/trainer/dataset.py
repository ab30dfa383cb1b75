"""Turn logged events into a training matrix: latest action per (user, item) wins."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from services.common.events import StoredEvent
from services.core.feedback import DEFAULT_TYPES, training_values

LIKE = 1.0
DISLIKE = -1.0


@dataclass(frozen=True)
class Interactions:
    """Deduplicated feedback: one row per (user, item), value +1 like / -1 dislike."""

    user_ids: list[str]
    item_ids: list[str]
    users: NDArray[np.int32]
    items: NDArray[np.int32]
    values: NDArray[np.float32]
    timestamps: NDArray[np.float64]

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.user_ids), len(self.item_ids)

    def __len__(self) -> int:
        return int(self.users.shape[0])

    def matrix(self, *, positive_only: bool = True) -> sparse.csr_matrix:
        """User x item matrix; likes only by default (value 1), else likes +1 / dislikes -1."""
        mask = self.values > 0 if positive_only else np.ones(len(self), dtype=bool)
        data = np.ones(int(mask.sum()), dtype=np.float32) if positive_only else self.values[mask]
        return sparse.csr_matrix(
            (data, (self.users[mask], self.items[mask])), shape=self.shape, dtype=np.float32
        )

    def subset(self, mask: NDArray[np.bool_]) -> Interactions:
        """Same id spaces, only the rows where ``mask`` holds."""
        return Interactions(
            self.user_ids,
            self.item_ids,
            self.users[mask],
            self.items[mask],
            self.values[mask],
            self.timestamps[mask],
        )


def from_triples(
    triples: Iterable[tuple[str, str, float, float]],
    item_ids: Iterable[str] = (),
) -> Interactions:
    """Build from (user, item, value, timestamp); later timestamps win, ties go to the later row.

    ``item_ids`` seeds the item index so catalogue items nobody rated are still modelled.
    """
    latest: dict[tuple[str, str], tuple[float, float]] = {}
    for user, item, value, ts in triples:
        key = (user, item)
        previous = latest.get(key)
        if previous is None or ts >= previous[1]:
            latest[key] = (value, ts)
    user_index: dict[str, int] = {}
    item_index: dict[str, int] = {item: i for i, item in enumerate(dict.fromkeys(item_ids))}
    n = len(latest)
    users = np.empty(n, dtype=np.int32)
    items = np.empty(n, dtype=np.int32)
    values = np.empty(n, dtype=np.float32)
    stamps = np.empty(n, dtype=np.float64)
    for row, ((user, item), (value, ts)) in enumerate(latest.items()):
        users[row] = user_index.setdefault(user, len(user_index))
        items[row] = item_index.setdefault(item, len(item_index))
        values[row] = value
        stamps[row] = ts
    return Interactions(list(user_index), list(item_index), users, items, values, stamps)


# Training value per action of the default feedback types (services/core/feedback.py).
DEFAULT_VALUES: Mapping[str, float] = training_values(DEFAULT_TYPES)


def from_events(
    events: Iterable[StoredEvent],
    item_ids: Iterable[str] = (),
    values: Mapping[str, float] = DEFAULT_VALUES,
) -> Interactions:
    """Flatten logged events into deduplicated interactions (actions without a training
    value in ``values`` are left out)."""

    def triples() -> Iterable[tuple[str, str, float, float]]:
        for event in events:
            for item, action in zip(event.item_ids, event.actions, strict=True):
                value = values.get(action)
                if value is not None:
                    yield event.user_id, item, value, event.timestamp

    return from_triples(triples(), item_ids)


# Events parsed before their rows are merged into the deduplicated arrays.
MERGE_BATCH = 1 << 16


class InteractionStore:
    """Deduplicated interactions kept up to date as events arrive (latest action wins).

    For a long-running trainer that reads only the new log lines each cycle: events are
    merged into arrays sorted by (user, item) in batches, so a cycle costs the new events
    plus one linear merge, not a re-parse of the whole log. Same rule as ``from_triples``:
    the later timestamp wins, a tie goes to the event that arrived later. Users and items
    are indexed in order of first appearance and indices never change, so arrays derived
    from an earlier snapshot (item neighbours) stay aligned with later ones.
    """

    def __init__(
        self, item_ids: Iterable[str] = (), values: Mapping[str, float] = DEFAULT_VALUES
    ) -> None:
        self.action_values = values
        self.user_index: dict[str, int] = {}
        self.item_index: dict[str, int] = {
            item: i for i, item in enumerate(dict.fromkeys(item_ids))
        }
        self.events = 0
        self._keys = np.empty(0, dtype=np.int64)
        self._values = np.empty(0, dtype=np.float32)
        self._stamps = np.empty(0, dtype=np.float64)

    def __len__(self) -> int:
        return int(self._keys.size)

    def likes(self) -> int:
        return int((self._values > 0).sum())

    def add(self, events: Iterable[StoredEvent]) -> int:
        """Merge ``events``; returns how many were added."""
        users: list[int] = []
        items: list[int] = []
        values: list[float] = []
        stamps: list[float] = []
        user_index, item_index = self.user_index, self.item_index
        action_values = self.action_values
        added = 0
        for event in events:
            added += 1
            user = user_index.setdefault(event.user_id, len(user_index))
            for item, action in zip(event.item_ids, event.actions, strict=True):
                value = action_values.get(action)
                if value is None:
                    continue
                users.append(user)
                items.append(item_index.setdefault(item, len(item_index)))
                values.append(value)
                stamps.append(event.timestamp)
            if len(users) >= MERGE_BATCH:
                self._merge(users, items, values, stamps)
                users, items, values, stamps = [], [], [], []
        self._merge(users, items, values, stamps)
        self.events += added
        return added

    def _merge(
        self, users: list[int], items: list[int], values: list[float], stamps: list[float]
    ) -> None:
        if not users:
            return
        keys = (np.array(users, dtype=np.int64) << 32) | np.array(items, dtype=np.int64)
        new_values = np.array(values, dtype=np.float32)
        new_stamps = np.array(stamps, dtype=np.float64)
        # Within the batch: sort by key, then timestamp; lexsort is stable, so among equal
        # timestamps the later event comes last. The last row of each key wins.
        order = np.lexsort((new_stamps, keys))
        keys, new_values, new_stamps = keys[order], new_values[order], new_stamps[order]
        last = np.ones(keys.size, dtype=bool)
        last[:-1] = keys[1:] != keys[:-1]
        keys, new_values, new_stamps = keys[last], new_values[last], new_stamps[last]
        # Against what is stored: replace when at least as recent, insert unseen pairs.
        pos = np.searchsorted(self._keys, keys)
        found = pos < self._keys.size
        found[found] = self._keys[pos[found]] == keys[found]
        newer = found.copy()
        newer[found] = new_stamps[found] >= self._stamps[pos[found]]
        self._values[pos[newer]] = new_values[newer]
        self._stamps[pos[newer]] = new_stamps[newer]
        fresh = ~found
        if fresh.any():
            at = pos[fresh]
            self._keys = np.insert(self._keys, at, keys[fresh])
            self._values = np.insert(self._values, at, new_values[fresh])
            self._stamps = np.insert(self._stamps, at, new_stamps[fresh])

    def interactions(self) -> Interactions:
        """A snapshot: later ``add`` calls do not change it."""
        return Interactions(
            list(self.user_index),
            list(self.item_index),
            (self._keys >> 32).astype(np.int32),
            (self._keys & 0xFFFFFFFF).astype(np.int32),
            self._values.copy(),
            self._stamps.copy(),
        )

    def save(self, path: Path, **extra: NDArray[np.generic]) -> None:
        """Write the store (and ``extra`` arrays) to ``path`` atomically: a temporary file in
        the same directory, fsynced, then renamed over ``path``."""
        ids = json.dumps([list(self.user_index), list(self.item_index)]).encode()
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as file:
                np.savez(
                    file,
                    keys=self._keys,
                    values=self._values,
                    stamps=self._stamps,
                    events=np.int64(self.events),
                    ids=np.frombuffer(ids, dtype=np.uint8),
                    **extra,  # type: ignore[arg-type]
                )
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: Path) -> tuple[InteractionStore, dict[str, NDArray[np.generic]]]:
        """A store written by ``save``, and the other arrays saved with it.

        Raises (OSError, ValueError, KeyError, zipfile.BadZipFile, ...) on a missing,
        damaged or foreign file: callers treat it as a cache and read the log instead.
        """
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        users, items = json.loads(arrays.pop("ids").tobytes())
        store = cls(items)
        store.user_index = {user: i for i, user in enumerate(users)}
        store.events = int(arrays.pop("events"))
        store._keys = arrays.pop("keys").astype(np.int64, copy=False)
        store._values = arrays.pop("values").astype(np.float32, copy=False)
        store._stamps = arrays.pop("stamps").astype(np.float64, copy=False)
        if not store._keys.size == store._values.size == store._stamps.size:
            raise ValueError(f"{path}: arrays of different lengths")
        return store, arrays
