"""Top-k ranking metrics, averaged over users (the Microsoft Recommenders definitions).

``recs[u]`` is user u's ranked list (best first), ``relevant[u]`` the items u actually
interacted with in the test data. Users without relevant items must be left out by the caller.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Mapping, Sequence

Recs = Sequence[Sequence[int]]
Relevant = Sequence[Collection[int]]


def _check(recs: Recs, relevant: Relevant) -> None:
    if len(recs) != len(relevant):
        raise ValueError(f"{len(recs)} recommendation lists for {len(relevant)} users")


def precision_at_k(recs: Recs, relevant: Relevant, k: int = 10) -> float:
    """Hits in the top k divided by k, averaged over users."""
    _check(recs, relevant)
    if not recs:
        return 0.0
    return sum(
        sum(1 for i in r[:k] if i in rel) / k for r, rel in zip(recs, relevant, strict=True)
    ) / len(recs)


def recall_at_k(recs: Recs, relevant: Relevant, k: int = 10) -> float:
    """Hits in the top k divided by the number of relevant items, averaged over users."""
    _check(recs, relevant)
    scores = [
        sum(1 for i in r[:k] if i in rel) / len(rel)
        for r, rel in zip(recs, relevant, strict=True)
        if rel
    ]
    return sum(scores) / len(scores) if scores else 0.0


def ndcg_at_k(recs: Recs, relevant: Relevant, k: int = 10) -> float:
    """Binary-gain NDCG: DCG of the list over the DCG of an ideal list of min(|rel|, k) hits."""
    _check(recs, relevant)
    scores = []
    for r, rel in zip(recs, relevant, strict=True):
        if not rel:
            continue
        dcg = sum(1.0 / math.log2(rank + 2) for rank, i in enumerate(r[:k]) if i in rel)
        ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(len(rel), k)))
        scores.append(dcg / ideal)
    return sum(scores) / len(scores) if scores else 0.0


def map_at_k(recs: Recs, relevant: Relevant, k: int = 10) -> float:
    """Mean average precision: precision at each hit's rank, summed, over min(|rel|, k)."""
    _check(recs, relevant)
    scores = []
    for r, rel in zip(recs, relevant, strict=True):
        if not rel:
            continue
        hits = 0
        total = 0.0
        for rank, i in enumerate(r[:k]):
            if i in rel:
                hits += 1
                total += hits / (rank + 1)
        scores.append(total / min(len(rel), k))
    return sum(scores) / len(scores) if scores else 0.0


def coverage(recs: Recs, n_items: int, k: int = 10) -> float:
    """Share of the catalogue that appears in at least one top-k list."""
    if n_items <= 0:
        return 0.0
    return len({i for r in recs for i in r[:k]}) / n_items


def genre_diversity(recs: Recs, genres: Mapping[int, Collection[str]], k: int = 10) -> float:
    """Mean intra-list distance: 1 - Jaccard similarity of genre sets, over item pairs.

    Pairs where either item has no genres are skipped; lists with no such pair are too.
    """
    per_list = []
    for r in recs:
        distances = []
        for a, b in itertools.combinations(r[:k], 2):
            ga, gb = genres.get(a), genres.get(b)
            if not ga or not gb:
                continue
            sa, sb = set(ga), set(gb)
            distances.append(1.0 - len(sa & sb) / len(sa | sb))
        if distances:
            per_list.append(sum(distances) / len(distances))
    return sum(per_list) / len(per_list) if per_list else 0.0


def ranking_metrics(
    recs: Recs,
    relevant: Relevant,
    n_items: int,
    k: int = 10,
    genres: Mapping[int, Collection[str]] | None = None,
) -> dict[str, float]:
    """All metrics at once, keyed like ``precision@10`` (the keys stored with a model)."""
    out = {
        f"precision@{k}": precision_at_k(recs, relevant, k),
        f"recall@{k}": recall_at_k(recs, relevant, k),
        f"ndcg@{k}": ndcg_at_k(recs, relevant, k),
        f"map@{k}": map_at_k(recs, relevant, k),
        "coverage": coverage(recs, n_items, k),
    }
    if genres is not None:
        out["diversity"] = genre_diversity(recs, genres, k)
    return out
