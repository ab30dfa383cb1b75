"""Score a trained model on held-out data through the serving path (``score_items``)."""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from services.common.serving_model import ServingModel
from services.core.ranking_metrics import ranking_metrics
from services.core.scoring import score_items
from services.trainer.dataset import Interactions


def top_k(scores: NDArray[np.float32], exclude: NDArray[np.int32], k: int) -> list[int]:
    """Indices of the k best scores, excluded items removed, best first."""
    scores = scores.astype(np.float64, copy=True)
    scores[exclude] = -np.inf
    n = scores.shape[0] - exclude.size
    k = max(0, min(k, n))
    if k == 0:
        return []
    part = np.argpartition(-scores, k - 1)[:k]
    return [int(i) for i in part[np.argsort(-scores[part], kind="stable")]]


def recommend(
    model: ServingModel,
    user_index: int | None,
    liked: NDArray[np.int32],
    disliked: NDArray[np.int32],
    k: int,
) -> list[int]:
    """What the api would rank first for this user, before exploration and impressions."""
    scores = score_items(model, user_index, liked, disliked)
    if scores is None:
        scores = model.popularity
    exclude = np.unique(np.concatenate([liked, disliked])).astype(np.int32)
    return top_k(scores, exclude, k)


def evaluate_model(
    model: ServingModel,
    train: Interactions,
    test: Interactions,
    k: int = 10,
    genres: Mapping[str, Collection[str]] | None = None,
    max_users: int | None = None,
    seed: int = 0,
    progress: str | None = None,
) -> dict[str, float]:
    """Metrics of ``model`` on the likes in ``test``, the user's ``train`` ratings as context.

    Ids are matched by string, so a model fitted on other data (the published one) can be
    scored on the same split as a new candidate. Items the model does not know count as misses.
    ``progress`` names a progress bar (on stderr); None shows none.
    """
    item_map = np.full(len(train.item_ids), -1, dtype=np.int32)
    if model.item_ids == train.item_ids:
        item_map = np.arange(len(train.item_ids), dtype=np.int32)
    else:
        index = {item: i for i, item in enumerate(model.item_ids)}
        for i, item in enumerate(train.item_ids):
            item_map[i] = index.get(item, -1)
    user_index = {user: i for i, user in enumerate(model.user_ids)}

    liked_mask = train.values > 0
    test_pos = test.values > 0
    users = np.unique(test.users[test_pos])
    if max_users is not None and users.size > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
    order = np.argsort(train.users, kind="stable")
    starts = np.searchsorted(train.users[order], np.arange(len(train.user_ids) + 1))
    t_order = np.argsort(test.users, kind="stable")
    t_starts = np.searchsorted(test.users[t_order], np.arange(len(test.user_ids) + 1))

    recs: list[list[int]] = []
    relevant: list[set[int]] = []
    for u in tqdm(users, desc=progress, disable=progress is None, leave=False, unit="user"):
        rows = order[starts[u] : starts[u + 1]]
        items = item_map[train.items[rows]]
        liked = items[liked_mask[rows] & (items >= 0)]
        disliked = items[~liked_mask[rows] & (items >= 0)]
        t_rows = t_order[t_starts[u] : t_starts[u + 1]]
        t_rows = t_rows[test_pos[t_rows]]
        # Unknown items map to distinct negative ids: never recommended, still in the denominator.
        rel = {int(item_map[i]) if item_map[i] >= 0 else -1 - int(i) for i in test.items[t_rows]}
        recs.append(recommend(model, user_index.get(train.user_ids[u]), liked, disliked, k))
        relevant.append(rel)
    item_genres = None
    if genres is not None:
        item_genres = {i: genres[item] for i, item in enumerate(model.item_ids) if item in genres}
    result = ranking_metrics(recs, relevant, len(model.item_ids), k, item_genres)
    result["users"] = float(len(recs))
    return result
