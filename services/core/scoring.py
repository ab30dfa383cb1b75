"""Score every catalogue item for one user: the single path used by serving and evaluation.

``liked``/``disliked`` are the user's current ratings read at request time, so a like made
a second ago counts here before any retrain (the freshness path): it adds the liked item's
neighbours to the scores and, for factor models, folds into the user's vector.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from services.common.serving_model import ServingModel

# How much a disliked item's neighbours are pushed down, relative to a like pulling them up.
DISLIKE_WEIGHT = 0.5
# Weight of the neighbour signal next to a factor model's own (standardised) scores.
# Tuned on ML-100k with the harness; it also carries likes made since the last training.
FACTOR_NEIGHBOUR_WEIGHT = 2.0
# Popularity family: weight of the neighbour signal next to popularity (both scaled to [0, 1]).
POPULARITY_NEIGHBOUR_WEIGHT = 1.0
# Popularity only breaks ties among items the neighbour signal does not reach.
TIE_BREAK = 1e-3


def _valid(indices: NDArray[np.int32], n_items: int) -> NDArray[np.int32]:
    indices = np.asarray(indices, dtype=np.int32).ravel()
    return indices[(indices >= 0) & (indices < n_items)]


def neighbour_scores(
    model: ServingModel, liked: NDArray[np.int32], disliked: NDArray[np.int32]
) -> NDArray[np.float32]:
    """Sum of the neighbour weights of liked items minus (scaled) those of disliked items."""
    n_items = len(model.item_ids)
    total = np.zeros(n_items, dtype=np.float64)
    for rows, sign in ((liked, 1.0), (disliked, -DISLIKE_WEIGHT)):
        if rows.size == 0:
            continue
        idx = model.neighbor_idx[rows].ravel()
        keep = idx >= 0
        total += sign * np.bincount(
            idx[keep], weights=model.neighbor_weight[rows].ravel()[keep], minlength=n_items
        )
    return total.astype(np.float32)


def fold_in(
    item_factors: NDArray[np.float32], liked: NDArray[np.int32], disliked: NDArray[np.int32]
) -> NDArray[np.float32]:
    """A user vector from rated items: mean liked vector minus a share of the disliked one."""
    vector = np.zeros(item_factors.shape[1], dtype=np.float32)
    if liked.size:
        vector += item_factors[liked].mean(axis=0)
    if disliked.size:
        vector -= DISLIKE_WEIGHT * item_factors[disliked].mean(axis=0)
    return vector


def _standardise(x: NDArray[np.float32]) -> NDArray[np.float32]:
    std = float(x.std())
    return (x - x.mean()) / std if std > 0 else x - x.mean()


def unit_scaled(x: NDArray[np.float32]) -> NDArray[np.float32]:
    """Scaled so the largest magnitude is 1 (all zeros stay zeros)."""
    top = float(np.abs(x).max()) if x.size else 0.0
    return (x / top).astype(np.float32) if top > 0 else x


def score_items(
    model: ServingModel,
    user_index: int | None,
    liked: NDArray[np.int32],
    disliked: NDArray[np.int32],
) -> NDArray[np.float32] | None:
    """One score per model item, higher is better; None when there is no signal at all.

    ``user_index`` indexes ``model.user_ids`` (None for a user the model has not seen).
    Ratings are not excluded here: the caller removes rated and already shown items.
    """
    n_items = len(model.item_ids)
    liked = _valid(liked, n_items)
    disliked = _valid(disliked, n_items)
    has_factors = model.item_factors is not None and model.user_factors is not None
    known = (
        has_factors
        and user_index is not None
        and model.user_factors is not None
        and 0 <= user_index < model.user_factors.shape[0]
    )
    if n_items == 0 or (not known and liked.size == 0 and disliked.size == 0):
        return None
    neighbours = neighbour_scores(model, liked, disliked)
    if has_factors and model.item_factors is not None and model.user_factors is not None:
        if known and user_index is not None:
            vector = model.user_factors[user_index]
        else:
            vector = fold_in(model.item_factors, liked, disliked)
        factor = model.item_factors @ vector
        if model.item_bias is not None:
            factor = factor + model.item_bias
        scaled = unit_scaled(neighbours)
        return (_standardise(factor.astype(np.float32)) + FACTOR_NEIGHBOUR_WEIGHT * scaled).astype(
            np.float32
        )
    popularity = model.popularity.astype(np.float32)
    if model.family == "popularity":
        scaled = unit_scaled(neighbours)
        return (popularity + POPULARITY_NEIGHBOUR_WEIGHT * scaled).astype(np.float32)
    # Neighbour models (EASE): the neighbour sum is the model's own score.
    scale = float(np.abs(neighbours).max()) or 1.0
    return (neighbours + TIE_BREAK * scale * popularity).astype(np.float32)
