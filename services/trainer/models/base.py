"""What every model family shares: parameters, popularity and item neighbours."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from services.common.serving_model import FloatArray, IntArray, ServingModel
from services.trainer.dataset import Interactions

log = logging.getLogger(__name__)

# Rows of the sparse item-item co-occurrence computed at once (bounds its non-zeros).
SPARSE_CHUNK = 8192


# Per item, its top-M related items (-1 padded) and their weights.
Neighbours = tuple[IntArray, FloatArray]


@dataclass(frozen=True)
class ModelParams:
    """Hyper-parameters of every family; each family reads the ones it needs."""

    # LightFM (WARP). Defaults tuned on ML-100k, see docs/quality.md.
    components: int = 64
    epochs: int = 60
    learning_rate: float = 0.02
    item_alpha: float = 0.0
    user_alpha: float = 0.0
    max_sampled: int = 10
    loss: str = "warp"
    # EASE: L2 strength and the item cap that keeps the dense Gram matrix bounded in memory
    # (4000 items -> ~130 MB of float64 during the inversion).
    ease_lambda: float = 500.0
    ease_max_items: int = 4000
    # Neighbours kept per item for the freshness path (the api folds fresh likes in with them).
    # 200 keeps EASE within ~0.005 NDCG@10 of the untruncated model on ML-100k.
    neighbours: int = 200
    threads: int = 2
    seed: int = 42


def popularity(data: Interactions) -> NDArray[np.float32]:
    """A "well-liked" score per item in [0, 1]: likes minus half the dislikes, floored at 0.

    Dislikes count half so an item many people tried but some disliked still ranks above
    an item nobody has seen; normalised so the api can mix it with other scores.
    """
    n_items = len(data.item_ids)
    if n_items == 0 or len(data) == 0:
        return np.zeros(n_items, dtype=np.float32)
    likes = np.bincount(data.items[data.values > 0], minlength=n_items).astype(np.float64)
    dislikes = np.bincount(data.items[data.values < 0], minlength=n_items).astype(np.float64)
    score = np.maximum(likes - 0.5 * dislikes, 0.0)
    top = score.max()
    return (score / top if top > 0 else score).astype(np.float32)


def empty_neighbours(n_items: int, m: int) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
    """No related items known yet: all padding."""
    return (
        np.full((n_items, m), -1, dtype=np.int32),
        np.zeros((n_items, m), dtype=np.float32),
    )


def top_m_dense(
    block: NDArray[np.floating], m: int, *, signed: bool = False
) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
    """Per row, the ``m`` largest entries, best first, -1/0 padded.

    ``signed=False`` keeps positive entries only; ``signed=True`` keeps the ``m`` entries
    of largest magnitude (EASE's negative weights carry real signal), positives first.
    """
    rows, cols = block.shape
    idx = np.full((rows, m), -1, dtype=np.int32)
    weight = np.zeros((rows, m), dtype=np.float32)
    if cols == 0 or m == 0:
        return idx, weight
    take = min(m, cols)
    key = np.abs(block) if signed else block
    part = np.argpartition(-key, take - 1, axis=1)[:, :take]
    vals = np.take_along_axis(block, part, axis=1)
    order = np.argsort(-vals, axis=1)
    part = np.take_along_axis(part, order, axis=1)
    vals = np.take_along_axis(vals, order, axis=1)
    keep = vals != 0 if signed else vals > 0
    idx[:, :take] = np.where(keep, part, -1)
    weight[:, :take] = np.where(keep, vals, 0.0)
    return idx, weight


def top_m_sparse(
    matrix: sparse.csr_matrix, m: int
) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
    """Per row of a sparse matrix, the ``m`` largest positive stored entries, best first.

    One sort over the stored entries (by row, then value descending) instead of a dense
    row scan: the cost follows the non-zeros, not rows x columns.
    """
    rows = matrix.shape[0]
    idx, weight = empty_neighbours(rows, m)
    matrix = matrix.tocsr()
    if m == 0 or matrix.nnz == 0:
        return idx, weight
    matrix.sort_indices()
    row_of = np.repeat(np.arange(rows, dtype=np.int32), np.diff(matrix.indptr))
    values = matrix.data.astype(np.float32, copy=False)
    keep = values > 0
    row_of, cols, values = row_of[keep], matrix.indices[keep], values[keep]
    if values.size == 0:
        return idx, weight
    # One stable sort of a composite key, row first, then value descending (values scaled
    # into [0, 0.5) so they never cross into the next row); ties keep column order.
    key = row_of + 0.5 * (1.0 - values.astype(np.float64) / (float(values.max()) * (1 + 1e-9)))
    order = np.argsort(key, kind="stable")
    row_of, cols, values = row_of[order], cols[order], values[order]
    starts = np.searchsorted(row_of, np.arange(rows, dtype=np.int32))
    rank = np.arange(row_of.size) - starts[row_of]
    top = rank < m
    idx[row_of[top], rank[top]] = cols[top]
    weight[row_of[top], rank[top]] = values[top]
    return idx, weight


def cooccurrence_neighbours(
    positives: sparse.csr_matrix, m: int, rows: NDArray[np.intp] | None = None
) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
    """Item-item cosine over binary likes, top ``m`` per item (only ``rows`` when given).

    Sparse throughout: the item-item product is computed in chunks of ``SPARSE_CHUNK``
    items and ranked by its non-zeros. The dense 1024 x n_items blocks of the earlier
    version cost 3.7 s on 20,000 items; this is about 0.6 s (bench/training.py data).
    Items outside ``rows`` get padding rows.
    """
    n_items = positives.shape[1]
    idx, weight = empty_neighbours(n_items, m)
    if n_items == 0 or positives.nnz == 0 or m == 0:
        return idx, weight
    x = positives.tocsr().astype(np.float32)
    x.data[:] = 1.0
    norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0).astype(np.float32)
    xt = x.T.tocsr()
    wanted = np.arange(n_items) if rows is None else np.asarray(rows, dtype=np.intp)
    for start in range(0, wanted.size, SPARSE_CHUNK):
        chunk = wanted[start : start + SPARSE_CHUNK]
        block = (xt[chunk] @ x).tocoo()
        # An item is not its own neighbour.
        off_diagonal = chunk[block.row] != block.col
        r, c = block.row[off_diagonal], block.col[off_diagonal]
        cosine = block.data[off_diagonal] * inv[chunk[r]] * inv[c]
        ranked = sparse.csr_matrix((cosine, (r, c)), shape=(chunk.size, n_items))
        idx[chunk], weight[chunk] = top_m_sparse(ranked, m)
    return idx, weight


def serving_model(
    family: str,
    data: Interactions,
    neighbours: tuple[IntArray, FloatArray],
    *,
    user_factors: FloatArray | None = None,
    item_factors: FloatArray | None = None,
    item_bias: FloatArray | None = None,
) -> ServingModel:
    """The fields every family fills the same way; the trainer sets the version later."""
    idx, weight = neighbours
    return ServingModel(
        version="",
        family=family,
        trained_at=time.time(),
        item_ids=list(data.item_ids),
        user_ids=list(data.user_ids),
        popularity=popularity(data),
        neighbor_idx=idx,
        neighbor_weight=weight,
        user_factors=user_factors,
        item_factors=item_factors,
        item_bias=item_bias,
    )
