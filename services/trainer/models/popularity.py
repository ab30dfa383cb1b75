"""Popularity: well-liked items first, item co-occurrence for the freshness path."""

from __future__ import annotations

import time

from services.common.serving_model import ServingModel
from services.trainer.dataset import Interactions
from services.trainer.models.base import ModelParams, cooccurrence_neighbours, popularity


def fit(data: Interactions, params: ModelParams) -> ServingModel:
    """Count likes; neighbours from co-occurrence so a like still moves the list."""
    idx, weight = cooccurrence_neighbours(data.matrix(positive_only=True), params.neighbours)
    return ServingModel(
        version="",
        family="popularity",
        trained_at=time.time(),
        item_ids=list(data.item_ids),
        user_ids=list(data.user_ids),
        popularity=popularity(data),
        neighbor_idx=idx,
        neighbor_weight=weight,
    )
