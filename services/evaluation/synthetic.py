"""Synthetic ratings with planted structure, for tests and scale runs.

Users belong to taste clusters; each cluster prefers its own slice of the catalogue and
two genres. Items have Zipf-like popularity. A user mostly rates items of their cluster
(liking most of them) and sometimes popular items from anywhere (disliking most of those).
A model that learns the clusters beats popularity by a wide margin; one that does not, cannot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.evaluation.datasets import Ratings

GENRES = [
    "Action", "Adventure", "Animation", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Horror", "Musical", "Romance", "Sci-Fi", "Thriller", "Western",
]  # fmt: skip


@dataclass(frozen=True)
class SyntheticConfig:
    """Size and shape of the generated data; defaults make ~40k ratings."""

    users: int = 1000
    items: int = 1500
    clusters: int = 10
    mean_ratings: float = 40.0  # per user; actual counts are log-normal around it
    in_cluster: float = 0.8  # share of a user's ratings drawn from their cluster's items
    like_in_cluster: float = 0.9
    like_outside: float = 0.25
    zipf: float = 1.0  # popularity exponent
    seed: int = 7


def generate(config: SyntheticConfig | None = None) -> Ratings:
    """Ratings 5 (like) / 1 (dislike), unique per (user, item), with genres and timestamps."""
    cfg = config or SyntheticConfig()
    rng = np.random.default_rng(cfg.seed)
    n_users, n_items, n_clusters = cfg.users, cfg.items, max(1, cfg.clusters)

    item_cluster = rng.integers(0, n_clusters, n_items)
    # Zipf weights over a random order, so popular items are spread over the clusters.
    weight = 1.0 / np.arange(1, n_items + 1) ** cfg.zipf
    weight = weight[rng.permutation(n_items)]
    user_cluster = rng.integers(0, n_clusters, n_users)
    counts = np.maximum(3, rng.lognormal(np.log(cfg.mean_ratings), 0.6, n_users).astype(np.int64))
    counts = np.minimum(counts, n_items)
    users = np.repeat(np.arange(n_users), counts)
    inside = rng.random(users.size) < cfg.in_cluster

    items = np.empty(users.size, dtype=np.int64)
    global_cdf = np.cumsum(weight) / weight.sum()
    outside_rows = np.flatnonzero(~inside)
    items[outside_rows] = np.searchsorted(global_cdf, rng.random(outside_rows.size))
    row_cluster = user_cluster[users]
    for c in range(n_clusters):
        members = np.flatnonzero(item_cluster == c)
        rows = np.flatnonzero(inside & (row_cluster == c))
        if members.size == 0:
            members = np.arange(n_items)
        cdf = np.cumsum(weight[members]) / weight[members].sum()
        items[rows] = members[np.searchsorted(cdf, rng.random(rows.size))]
    items = np.minimum(items, n_items - 1)

    # Sampling was with replacement: keep the first rating of each (user, item).
    _, first = np.unique(users * n_items + items, return_index=True)
    first.sort()
    users, items = users[first], items[first]
    same = item_cluster[items] == user_cluster[users]
    p_like = np.where(same, cfg.like_in_cluster, cfg.like_outside)
    ratings = np.where(rng.random(users.size) < p_like, 5.0, 1.0).astype(np.float32)
    # Each user rates over time in a random order, users interleaved.
    stamps = 1.7e9 + rng.random(users.size) * 86400.0 * 30

    cluster_genres = rng.choice(len(GENRES), size=(n_clusters, 2))
    extra = rng.integers(0, len(GENRES), n_items)
    genres: dict[str, list[str]] = {}
    for i in range(n_items):
        own = GENRES[cluster_genres[item_cluster[i], rng.integers(0, 2)]]
        other = GENRES[extra[i]]
        genres[f"i{i}"] = [own] if other == own or rng.random() < 0.5 else [own, other]
    return Ratings(
        name="synthetic",
        user_ids=[f"u{u}" for u in range(n_users)],
        item_ids=[f"i{i}" for i in range(n_items)],
        users=users.astype(np.int32),
        items=items.astype(np.int32),
        ratings=ratings,
        timestamps=stamps,
        genres=genres,
        like_threshold=4.0,
    )
