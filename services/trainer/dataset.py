"""Turn logged events into a training matrix: latest action per (user, item) wins."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from services.common.events import StoredEvent

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


def from_events(events: Iterable[StoredEvent], item_ids: Iterable[str] = ()) -> Interactions:
    """Flatten logged events into deduplicated interactions."""

    def triples() -> Iterable[tuple[str, str, float, float]]:
        for event in events:
            for item, action in zip(event.item_ids, event.actions, strict=True):
                yield event.user_id, item, LIKE if action == "like" else DISLIKE, event.timestamp

    return from_triples(triples(), item_ids)
