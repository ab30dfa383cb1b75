"""Popularity: well-liked items first, item co-occurrence for the freshness path."""

from __future__ import annotations

from services.common.serving_model import ServingModel
from services.trainer.dataset import Interactions
from services.trainer.models.base import (
    ModelParams,
    Neighbours,
    cooccurrence_neighbours,
    serving_model,
)


def fit(
    data: Interactions, params: ModelParams, neighbours: Neighbours | None = None
) -> ServingModel:
    """Count likes; neighbours from co-occurrence so a like still moves the list."""
    if neighbours is None:
        neighbours = cooccurrence_neighbours(data.matrix(positive_only=True), params.neighbours)
    return serving_model("popularity", data, neighbours)
