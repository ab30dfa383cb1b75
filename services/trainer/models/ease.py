"""EASE (Steck 2019): closed-form item-item weights, kept as top-M neighbours per item."""

from __future__ import annotations

import logging
import time

import numpy as np
import scipy.linalg
from numpy.typing import NDArray
from scipy import sparse

from services.common.serving_model import ServingModel
from services.trainer.dataset import Interactions
from services.trainer.models.base import (
    ModelParams,
    Neighbours,
    cooccurrence_neighbours,
    serving_model,
    top_m_dense,
)

log = logging.getLogger(__name__)


def ease_weights(gram: NDArray[np.floating], lam: float) -> NDArray[np.floating]:
    """B = I - P diag(1/diag(P)) with P = (G + lam I)^-1, zero diagonal, in G's precision.

    P comes from a Cholesky factor (G + lam I is symmetric positive definite):
    P = L^-T L^-1 with L^-1 from LAPACK's triangular inverse and one matrix product.
    On 4,000 items in float32 that is 0.8 s against 3.0 s for ``numpy.linalg.inv`` in
    float64 (bench data), and the weights agree to 3e-8 of their largest value.
    """
    n = gram.shape[0]
    if n == 0:
        return np.zeros((0, 0), dtype=gram.dtype)
    g = np.array(gram, order="F")
    g[np.diag_indices_from(g)] += lam
    potrf, trtri = scipy.linalg.lapack.get_lapack_funcs(("potrf", "trtri"), (g,))
    factor, info = potrf(g, lower=1, overwrite_a=1, clean=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE Gram matrix is not positive definite ({info})")
    inverse, info = trtri(factor, lower=1, overwrite_c=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE Cholesky factor is singular ({info})")
    # potrf(clean=1) zeroed the upper triangle and trtri leaves it alone: inverse = L^-1.
    p: NDArray[np.floating] = inverse.T @ inverse
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
    x = positives[:, kept].astype(np.float32)
    # float32 halves the dense work; the Gram entries are counts, exact in float32.
    gram = (x.T @ x).toarray()
    b = ease_weights(gram, params.ease_lambda)
    sub_idx, sub_w = top_m_dense(b, m, signed=True)
    if kept.size == n_items:
        idx, weight = sub_idx, sub_w
    else:
        others = np.setdiff1d(np.arange(n_items), kept)
        idx, weight = cooccurrence_neighbours(positives, m, rows=others)
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


def fit(data: Interactions, params: ModelParams, _: Neighbours | None = None) -> ServingModel:
    """EASE on the likes; its item-item weights are the whole model (never reused)."""
    return serving_model("ease", data, ease_neighbours(data.matrix(positive_only=True), params))
