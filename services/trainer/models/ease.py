"""EASE (Steck 2019): closed-form item-item weights, kept as top-M neighbours per item."""

from __future__ import annotations

import logging
import time

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from services.common.serving_model import ServingModel
from services.trainer.dataset import Interactions
from services.trainer.models.base import (
    ModelParams,
    cooccurrence_neighbours,
    serving_model,
    top_m_dense,
)

log = logging.getLogger(__name__)


def ease_weights(gram: NDArray[np.float64], lam: float) -> NDArray[np.float64]:
    """B = I - P diag(1/diag(P)) with P = (G + lam I)^-1, zero diagonal."""
    g = gram.copy()
    g[np.diag_indices_from(g)] += lam
    p = np.linalg.inv(g)
    b = p / (-np.diag(p))[None, :]
    b[np.diag_indices_from(b)] = 0.0
    return b


def ease_neighbours(
    positives: sparse.csr_matrix, params: ModelParams
) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
    """EASE weights of the most-liked ``ease_max_items`` items as top-M neighbours.

    The Gram matrix is dense (items x items), so a huge catalogue is capped: the other items
    get co-occurrence neighbours rescaled to EASE's weight range, which keeps them reachable
    through the freshness path.
    """
    n_items = positives.shape[1]
    m = params.neighbours
    counts = np.asarray(positives.sum(axis=0)).ravel()
    started = time.perf_counter()
    if n_items <= params.ease_max_items:
        kept = np.arange(n_items)
    else:
        kept = np.sort(np.argsort(-counts, kind="stable")[: params.ease_max_items])
    x = positives[:, kept]
    gram = np.asarray((x.T @ x).todense(), dtype=np.float64)
    b = ease_weights(gram, params.ease_lambda) if kept.size else np.zeros((0, 0))
    sub_idx, sub_w = top_m_dense(b, m, signed=True)
    if kept.size == n_items:
        idx, weight = sub_idx, sub_w
    else:
        idx, weight = cooccurrence_neighbours(positives, m)
        ease_scale = np.median(sub_w[sub_w > 0]) if (sub_w > 0).any() else 1.0
        cos_scale = np.median(weight[weight > 0]) if (weight > 0).any() else 1.0
        weight *= np.float32(ease_scale / cos_scale)
        idx[kept] = np.where(sub_idx >= 0, kept[np.maximum(sub_idx, 0)], -1)
        weight[kept] = sub_w
    log.info(
        "ease on %d of %d items (lambda=%g) in %.2fs",
        kept.size,
        n_items,
        params.ease_lambda,
        time.perf_counter() - started,
    )
    return idx.astype(np.int32), weight.astype(np.float32)


def fit(data: Interactions, params: ModelParams) -> ServingModel:
    """EASE on the likes; its item-item weights are the whole model."""
    return serving_model("ease", data, ease_neighbours(data.matrix(positive_only=True), params))
