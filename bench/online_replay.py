"""The cold-start protocol replayed in memory over the pure core, in seconds, for tuning.

Same shape as ``recsys simulate --protocol cold`` (fresh users sampled from MovieLens-100k
histories, a padded catalogue, ``concurrency`` users at once, sessions of a few requests,
a second session later, feedback only on shown items the user rated) but with no HTTP,
Redis or broker: every request calls ``ranking.recommend`` with the bandit's draws and the
live co-likes exactly as the api composes them, and every reaction updates the counts at
once. It ranks each request afresh (no prefetched pages) and has no trained model, so it
measures the live layer alone; the HTTP benchmark stays the judge.

    python -m bench.online_replay --users 3000 --catalogue 24460
"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from services.core.bandit import BanditPolicy, ItemStats, exploration_rate, thompson_keys
from services.core.colikes import NEIGHBOURS_PER_LIKE, RECENT_LIKES, conditional_rates
from services.core.ranking import recommend
from services.core.ranking_metrics import genre_diversity
from services.evaluation.datasets import Ratings
from services.evaluation.movielens import DEFAULT_CACHE, load_ml100k


@dataclass
class Knobs:
    exploration_rate: float = 0.1
    personal_weight: float = 1.0
    dislike_weight: float = -0.3
    diversify: bool = True
    policy: BanditPolicy = field(default_factory=BanditPolicy)
    # As the api serves: counts copied every ``snapshot_ticks`` (0: live), users with no
    # history share ``variants`` rankings per copy (0: each ranked afresh), and a ranking
    # covers ``pages`` pages kept for ``page_ticks`` until the user rates something.
    snapshot_ticks: int = 0
    variants: int = 0
    pages: int = 1
    page_ticks: int = 12
    # Up to twice the rate while most of the catalogue is untried, as the api does.
    untried_boost: bool = False


@dataclass
class World:
    n: int
    genres: list[tuple[str, ...]]
    impressions: np.ndarray
    likes: np.ndarray
    dislikes: np.ndarray
    colikes: dict[int, dict[int, float]] = field(default_factory=lambda: defaultdict(dict))
    users_seen: int = 0
    tick: int = 0
    copy: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    copied_at: int = -1
    pool: list[list[int]] = field(default_factory=list)
    kept: dict[int, tuple[list[int], int]] = field(default_factory=dict)
    liked_share: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))


def catalogue(ratings: Ratings, size: int, rng: np.random.Generator) -> list[tuple[str, ...]]:
    ml = [tuple(ratings.genres.get(i, [])) for i in ratings.item_ids]
    pad = [ml[j] for j in rng.integers(0, len(ml), size=max(0, size - len(ml)))]
    return ml + pad


def run(ratings: Ratings, users: int, size: int, knobs: Knobs, mode: str, seed: int,
        concurrency: int = 50, rounds: int = 3,
        gap_ticks: int = 37) -> dict[str, float]:  # fmt: skip
    rng = np.random.default_rng(seed)
    genres = catalogue(ratings, size, rng)
    n = len(genres)
    world = World(n, genres, np.zeros(n, np.float32), np.zeros(n, np.float32),
                  np.zeros(n, np.float32))  # fmt: skip
    likes_mask = ratings.likes()
    # Each item's share of all users who like it: what an all-knowing popularity ranks by.
    world.liked_share = np.zeros(n, np.float32)
    np.add.at(world.liked_share, ratings.items[likes_mask], 1.0 / len(ratings.user_ids))
    truth: dict[int, dict[int, bool]] = defaultdict(dict)
    for u, i, liked in zip(ratings.users.tolist(), ratings.items.tolist(), likes_mask.tolist(),
                           strict=True):  # fmt: skip
        truth[u][i] = liked
    picks = rng.integers(0, len(ratings.user_ids), size=users)
    queue: list[tuple[int, int, int]] = [(0, p, 0) for p in range(users)]  # ready, user, session
    active: list[list[int]] = []  # [user, session, rounds left]
    shown: list[set[int]] = [set() for _ in range(users)]
    rated: list[dict[int, bool]] = [{} for _ in range(users)]
    liked_order: list[list[int]] = [[] for _ in range(users)]
    precision, ndcg, lists, hit_users = [], [], [], set()
    tick = 0
    while queue or active:
        # Ready users first; among them, as the HTTP driver does, returning users before
        # new ones (so a pause is the pause, not the length of the queue).
        queue.sort(key=lambda entry: (entry[0] > tick, -entry[2], entry[0], entry[1]))
        while len(active) < concurrency and queue and queue[0][0] <= tick:
            _, user, session = queue.pop(0)
            active.append([user, session, rounds])
        for slot in list(active):
            user = slot[0]
            if not shown[user]:
                world.users_seen += 1
            world.tick = tick
            items = serve(world, user, shown[user], rated[user], liked_order[user], knobs, mode,
                          rng)  # fmt: skip
            gt = truth[int(picks[user])]
            relevant = {i for i, liked in gt.items() if liked and i not in rated[user]}
            hits = [i for i in items if i in relevant]
            precision.append(len(hits) / 10)
            dcg = sum(1 / math.log2(r + 2) for r, i in enumerate(items) if i in relevant)
            ideal = sum(1 / math.log2(r + 2) for r in range(min(10, len(relevant))))
            ndcg.append(dcg / ideal if ideal else 0.0)
            lists.append(items)
            if hits:
                hit_users.add(user)
            for i in items:
                if i not in shown[user]:
                    world.impressions[i] += 1
                shown[user].add(i)
            for i in items:
                if i in gt and i not in rated[user]:
                    react(world, user, i, gt[i], rated[user], liked_order[user])
                    world.kept.pop(user, None)
            slot[2] -= 1
            if slot[2] == 0:
                active.remove(slot)
                if slot[1] == 0:
                    queue.append((tick + gap_ticks, user, 1))
        tick += 1
    curve = [round(float(np.mean(part)), 3) for part in np.array_split(np.array(precision), 8)]
    print("  curve", curve)
    # Were the items most users like found? Shown fewer than 5 times in the whole run means
    # one or two unlucky first impressions buried them.
    top = np.argsort(-world.liked_share)[:50]
    buried = int((world.impressions[top] < 5).sum())
    return {
        "50 most liked shown < 5 times": float(buried),
        "P@10": float(np.mean(precision)),
        "NDCG@10": float(np.mean(ndcg)),
        "hit rate": len(hit_users) / users,
        "coverage": len({i for items in lists for i in items}) / n,
        "diversity": genre_diversity(lists, dict(enumerate(genres)), 10),
    }


def react(world: World, user: int, item: int, liked: bool, rated: dict[int, bool],
          liked_order: list[int]) -> None:  # fmt: skip
    rated[item] = liked
    if liked:
        world.likes[item] += 1
        for other in liked_order:
            for a, b in ((item, other), (other, item)):
                world.colikes[a][b] = world.colikes[a].get(b, 0.0) + 1.0
        liked_order.append(item)
    else:
        world.dislikes[item] += 1


def serve(world: World, user: int, shown: set[int], rated: dict[int, bool],
          liked_order: list[int], knobs: Knobs, mode: str,
          rng: np.random.Generator) -> list[int]:  # fmt: skip
    n = world.n
    rated_mask = np.zeros(n, bool)
    rated_mask[list(rated)] = True
    shown_mask = np.zeros(n, bool)
    shown_mask[list(shown)] = True
    if mode == "oracle":
        # An upper bound for any policy without personalisation: it knows every item's share
        # of users who like it from the start (no exploration needed).
        key = world.liked_share + rng.random(n, dtype=np.float32) * 1e-6
        key[rated_mask | shown_mask] = -1
        return [int(i) for i in np.argsort(-key)[:10]]
    if mode == "baseline":
        key = world.likes + rng.random(n, dtype=np.float32) * 1e-3
        key[rated_mask | shown_mask] = -1
        return [int(i) for i in np.argsort(-key)[:10]]
    kept = world.kept.pop(user, None)
    if kept is not None and world.tick - kept[1] <= knobs.page_ticks:
        fresh = [i for i in kept[0] if i not in shown and i not in rated]
        if len(fresh) >= 10:
            world.kept[user] = (fresh[10:], kept[1])
            return fresh[:10]
    counts = (world.impressions, world.likes, world.dislikes)
    if knobs.snapshot_ticks:
        if world.copy is None or world.tick - world.copied_at >= knobs.snapshot_ticks:
            world.copy = tuple(c.copy() for c in counts)  # type: ignore[assignment]
            world.copied_at = world.tick
            world.pool = []
        counts = world.copy  # type: ignore[assignment]
    new_user = not shown and not rated
    if new_user and knobs.variants and len(world.pool) >= knobs.variants:
        items = world.pool[int(rng.integers(len(world.pool)))]
        world.kept[user] = (items[10:], world.tick)
        return items[:10]
    stats = ItemStats(*counts)
    base = thompson_keys(stats, knobs.policy, rng)
    personal = None
    neighbours = []
    for item in liked_order[-RECENT_LIKES:]:
        top = sorted(world.colikes.get(item, {}).items(), key=lambda kv: -kv[1])
        top = top[:NEIGHBOURS_PER_LIKE]
        neighbours.append((item, np.array([t[0] for t in top], np.int64),
                           np.array([t[1] for t in top], np.float32)))  # fmt: skip
    if neighbours and knobs.personal_weight > 0:
        exposure = np.minimum(world.impressions / max(world.users_seen, 1), 1.0)
        base = conditional_rates(base, neighbours, world.likes, exposure)
    rate = knobs.exploration_rate
    if knobs.untried_boost:
        rate = exploration_rate(rate, float((stats.impressions == 0).mean()))
    ranked = recommend(
        k=10 * knobs.pages, page=10, base=base, personal=personal, rated=rated_mask,
        shown=shown_mask,
        genres=world.genres if knobs.diversify else None, exploration_rate=rate,
        seed=int(rng.integers(1 << 31)), impressions=world.impressions,
        personal_weight=knobs.personal_weight,
    )  # fmt: skip
    if new_user and knobs.variants:
        world.pool.append(ranked.items)
    if knobs.pages > 1:
        world.kept[user] = (ranked.items[10:], world.tick)
    return ranked.items[:10]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--users", type=int, default=3000)
    p.add_argument("--catalogue", type=int, default=24460)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--exploration", type=float, nargs="*", default=[0.1])
    p.add_argument("--personal-weight", type=float, nargs="*", default=[1.0])
    p.add_argument("--prior-strength", type=float, nargs="*", default=[10.0])
    p.add_argument("--watched-weight", type=float, nargs="*", default=[0.3])
    p.add_argument("--optimism", type=float, default=BanditPolicy.optimism)
    p.add_argument("--dislike-weight", type=float, default=-0.3)
    p.add_argument("--baseline", action="store_true")
    p.add_argument("--oracle", action="store_true", help="also rank by the true liked share")
    p.add_argument("--sampled-arms", type=int, default=512)
    p.add_argument("--concentration", type=float, default=1.0)
    p.add_argument("--genre-penalty", type=float, default=None)
    p.add_argument("--no-diversity", action="store_true")
    p.add_argument(
        "--as-served",
        action="store_true",
        help="2 s copies of the counts, 8 new-user variants, 5 pages kept 10 s",
    )
    p.add_argument("--variants", type=int, default=None)
    args = p.parse_args()
    ratings = load_ml100k(DEFAULT_CACHE)
    if args.genre_penalty is not None:
        import services.core.ranking as ranking

        ranking.GENRE_PENALTY = args.genre_penalty
    if args.baseline:
        print("baseline", run(ratings, args.users, args.catalogue, Knobs(), "baseline", args.seed))
    if args.oracle:
        print("oracle", run(ratings, args.users, args.catalogue, Knobs(), "oracle", args.seed))
    for e in args.exploration:
        for w in args.personal_weight:
            for s in args.prior_strength:
                for ww in args.watched_weight:
                    knobs = Knobs(
                        exploration_rate=e,
                        personal_weight=w,
                        dislike_weight=args.dislike_weight,
                        diversify=not args.no_diversity,
                        policy=BanditPolicy(
                            watched_weight=ww,
                            prior_strength=s,
                            sampled_arms=args.sampled_arms,
                            concentration=args.concentration,
                            optimism=args.optimism,
                        ),
                    )
                    if args.as_served:
                        knobs.snapshot_ticks, knobs.variants, knobs.pages = 3, 8, 5
                        knobs.untried_boost = True
                    if args.variants is not None:
                        knobs.variants = args.variants
                    figures = run(ratings, args.users, args.catalogue, knobs, "recsys", args.seed)
                    print(f"explore={e} personal={w} prior={s} watched={ww}",
                          {k: round(v, 4) for k, v in figures.items()})  # fmt: skip


if __name__ == "__main__":
    main()
