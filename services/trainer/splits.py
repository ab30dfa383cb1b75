"""Train/test splits of an ``Interactions`` set; both halves keep the same id spaces."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from services.trainer.dataset import Interactions


def _per_user_test_mask(
    data: Interactions,
    keys: NDArray[np.float64],
    test_fraction: float,
    min_train: int,
) -> NDArray[np.bool_]:
    """Mark, per user, the rows with the largest ``keys`` as test.

    A user keeps at least ``min_train`` training rows; users with fewer rows than
    ``min_train + 1`` are all training.
    """
    mask = np.zeros(len(data), dtype=bool)
    if len(data) == 0:
        return mask
    order = np.lexsort((keys, data.users))
    users_sorted = data.users[order]
    starts = np.searchsorted(users_sorted, np.arange(len(data.user_ids) + 1))
    counts = np.diff(starts)
    n_test = np.floor(counts * test_fraction + 0.5).astype(np.int64)  # round half up, like MS
    n_test = np.minimum(n_test, np.maximum(counts - min_train, 0))
    for u in np.flatnonzero(n_test):
        mask[order[starts[u + 1] - n_test[u] : starts[u + 1]]] = True
    return mask


def stratified_split(
    data: Interactions, test_fraction: float = 0.25, seed: int = 42, min_train: int = 1
) -> tuple[Interactions, Interactions]:
    """Random per-user split (the Microsoft Recommenders ``python_stratified_split``)."""
    keys = np.random.default_rng(seed).random(len(data))
    mask = _per_user_test_mask(data, keys, test_fraction, min_train)
    return data.subset(~mask), data.subset(mask)


def temporal_split(
    data: Interactions, test_fraction: float = 0.25, min_train: int = 1
) -> tuple[Interactions, Interactions]:
    """Each user's latest interactions are the test set: how production data arrives."""
    # lexsort is stable: equal timestamps keep row order, so the split is deterministic.
    mask = _per_user_test_mask(data, data.timestamps, test_fraction, min_train)
    return data.subset(~mask), data.subset(mask)
