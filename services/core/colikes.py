"""Live co-likes: items liked by the same users, counted as the likes arrive.

A like of item i by a user who already liked j counts one co-like of (i, j) both ways, in the
ingest step, so the next /recs of every user sees it. A user's chance of liking item j is
estimated from j's co-likes with the items the user liked, corrected for how many of
their likers were shown j (``conditional_rates``): an item-to-item neighbourhood that needs no
training and so serves a fresh user from their first like, and items from their first
likers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float32]
IndexArray = NDArray[np.int64]

# Liked items whose neighbours are read per ranking (the most recent), and neighbours kept
# per liked item (the most co-liked): bounds the work of a request whatever the history.
RECENT_LIKES = 20
NEIGHBOURS_PER_LIKE = 50
# Pseudo-observations of the item's population rate behind each conditional estimate: how
# much co-like evidence it takes to move away from what everyone likes.
CONDITIONAL_PRIOR = 5.0


def conditional_rates(
    population: FloatArray,
    neighbours: Sequence[tuple[int, IndexArray, FloatArray]],
    likes: FloatArray,
    exposure: FloatArray,
) -> FloatArray:
    """Per item j, the chance this user likes it given the items i they liked.

    For each liked item i and each j among its most co-liked items (``neighbours``):
    P(j | i) = (co(i, j) + m p_j) / (likes_i e_j + m), where p_j is the population's rate
    (``population``) and e_j the share of users shown j so far (``exposure``): of i's likers
    about likes_i e_j saw j, and co(i, j) of them liked it. Items outside i's list keep p_j
    for i (their co-likes were not read). The estimates of the user's liked items are
    averaged; with no liked items the answer is ``population``.
    """
    if not neighbours:
        return population
    m = CONDITIONAL_PRIOR
    n_items = population.shape[0]
    shift = np.zeros(n_items, dtype=np.float64)
    for item, others, counts in neighbours:
        keep = (others >= 0) & (others < n_items)
        others, counts = others[keep], counts[keep]
        p = population[others].astype(np.float64)
        conditional = (counts + m * p) / (likes[item] * exposure[others] + m)
        np.add.at(shift, others, conditional - p)
    return (population + shift / len(neighbours)).astype(np.float32)
