"""LightFM with WARP loss: user and item factors, item biases."""

from __future__ import annotations

import logging
import time

import numpy as np
from lightfm import LightFM

from services.common.serving_model import ServingModel
from services.trainer.dataset import Interactions
from services.trainer.models.base import ModelParams, Neighbours, serving_model
from services.trainer.models.ease import ease_neighbours

log = logging.getLogger(__name__)


def fit(
    data: Interactions, params: ModelParams, neighbours: Neighbours | None = None
) -> ServingModel:
    """Fit WARP on the likes; ``neighbours`` given are used as they are.

    WARP only learns from positive entries (LightFM skips non-positive ones), so dislikes
    are not fed to the fit; they act at serving time, where scoring pushes down the
    neighbours of disliked items and folds them into the user vector as negatives.
    """
    positives = data.matrix(positive_only=True).tocoo()
    model = LightFM(
        no_components=params.components,
        loss=params.loss,
        learning_rate=params.learning_rate,
        item_alpha=params.item_alpha,
        user_alpha=params.user_alpha,
        max_sampled=params.max_sampled,
        random_state=np.random.RandomState(params.seed),
    )
    started = time.perf_counter()
    for epoch in range(params.epochs):
        model.fit_partial(positives, epochs=1, num_threads=params.threads)
        if (epoch + 1) % 10 == 0:
            log.debug("lightfm epoch %d/%d", epoch + 1, params.epochs)
    log.info("lightfm fit %d epochs in %.1fs", params.epochs, time.perf_counter() - started)
    # EASE neighbours carry fresh likes and, blended with the factors, lift quality too.
    if neighbours is None:
        neighbours = ease_neighbours(positives.tocsr(), params)
    return serving_model(
        "lightfm",
        data,
        neighbours,
        user_factors=np.ascontiguousarray(model.user_embeddings, dtype=np.float32),
        item_factors=np.ascontiguousarray(model.item_embeddings, dtype=np.float32),
        item_bias=np.ascontiguousarray(model.item_biases, dtype=np.float32),
    )
