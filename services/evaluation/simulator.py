"""``recsys simulate``: replay a dataset against a running deployment, as real traffic arrives.

1. The catalogue goes in with POST /add_items, in batches.
2. Each simulated user's history (the training part of a per-user split) goes to POST /interact.
3. Users (bounded concurrency) ask GET /recs/{user}, react with likes/dislikes to recommended
   items they have held-out ratings for, pause briefly or for longer, and come back.
4. Online precision, hit rate, NDCG, coverage, diversity, latency percentiles and errors are
   printed at the end.

``--protocol cold`` runs the cold-start benchmark instead: users with no history at all,
against the deployment and a built-in baseline (services/evaluation/online.py).

The run is bounded in users, rounds and seconds, and talks to loopback addresses only.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from services.core.ranking_metrics import genre_diversity
from services.evaluation.datasets import Ratings
from services.evaluation.movielens import DEFAULT_CACHE, load_ml100k
from services.evaluation.synthetic import SyntheticConfig, generate

log = logging.getLogger(__name__)

# /interact accepts at most this many items per event (services.common.events).
MAX_ITEMS_PER_EVENT = 1000


@dataclass
class UserPlan:
    """What one simulated user already rated (history) and will react to (held out)."""

    user_id: str
    history: list[tuple[str, str, float]]  # (item, action, timestamp)
    held_out: dict[str, bool]  # item -> liked?


@dataclass
class Stats:
    """Everything measured during a run."""

    recs_latency: list[float] = field(default_factory=list)
    interact_latency: list[float] = field(default_factory=list)
    add_items_latency: list[float] = field(default_factory=list)
    precision: list[float] = field(default_factory=list)
    ndcg: list[float] = field(default_factory=list)
    hits: list[bool] = field(default_factory=list)
    lists: list[list[str]] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    likes: int = 0
    dislikes: int = 0
    short_lists: int = 0
    repeats: int = 0


def plans(ratings: Ratings, users: int, history_fraction: float, seed: int) -> list[UserPlan]:
    """Pick ``users`` users; each user's earliest ratings are history, the rest held out."""
    rng = np.random.default_rng(seed)
    by_user: dict[int, list[int]] = {}
    for row, user in enumerate(ratings.users.tolist()):
        by_user.setdefault(user, []).append(row)
    chosen = sorted(by_user)
    rng.shuffle(chosen)
    likes = ratings.likes()
    out = []
    for user in chosen[:users]:
        rows = sorted(by_user[user], key=lambda r: ratings.timestamps[r])
        cut = round(len(rows) * history_fraction)
        history = [
            (
                ratings.item_ids[ratings.items[r]],
                "like" if likes[r] else "dislike",
                float(ratings.timestamps[r]),
            )
            for r in rows[:cut]
        ]
        held = {ratings.item_ids[ratings.items[r]]: bool(likes[r]) for r in rows[cut:]}
        out.append(UserPlan(ratings.user_ids[user], history, held))
    return out


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 in milliseconds (nan when empty)."""
    if not values:
        return {"p50": math.nan, "p95": math.nan, "p99": math.nan}
    arr = np.asarray(values) * 1000.0
    return {f"p{q}": float(np.percentile(arr, q)) for q in (50, 95, 99)}


def list_ndcg(items: Sequence[str], relevant: set[str], k: int) -> float:
    """Binary NDCG@k of one list against the items still to be liked."""
    if not relevant:
        return 0.0
    dcg = sum(1.0 / math.log2(r + 2) for r, item in enumerate(items[:k]) if item in relevant)
    ideal = sum(1.0 / math.log2(r + 2) for r in range(min(len(relevant), k)))
    return dcg / ideal


async def call(
    client: httpx.AsyncClient,
    stats: Stats,
    method: str,
    url: str,
    sink: list[float],
    **kw: Any,
) -> httpx.Response | None:
    """One request; its latency goes to ``sink``, a failure to ``stats.errors`` (then None)."""
    started = time.perf_counter()
    # Per-user paths would make one error bucket per user.
    path = "/recs" if url.startswith("/recs/") else url.split("?")[0]
    try:
        response = await client.request(method, url, **kw)
    except httpx.HTTPError as exc:
        stats.errors[f"{method} {path}: {type(exc).__name__}"] += 1
        return None
    sink.append(time.perf_counter() - started)
    if response.status_code != 200:
        stats.errors[f"{method} {path}: HTTP {response.status_code}"] += 1
        return None
    return response


class Simulator:
    """Drives one replay; all HTTP goes through two httpx clients."""

    def __init__(
        self,
        api: httpx.AsyncClient,
        collector: httpx.AsyncClient,
        stats: Stats,
        *,
        k: int,
        rounds: int,
        short_pause: float,
        long_pause: float,
        long_pause_share: float,
        deadline: float,
        seed: int,
    ) -> None:
        self.api = api
        self.collector = collector
        self.stats = stats
        self.k = k
        self.rounds = rounds
        self.short_pause = short_pause
        self.long_pause = long_pause
        self.long_pause_share = long_pause_share
        self.deadline = deadline
        self.rng = random.Random(seed)

    async def _call(
        self, client: httpx.AsyncClient, method: str, url: str, sink: list[float], **kw: Any
    ) -> httpx.Response | None:
        return await call(client, self.stats, method, url, sink, **kw)

    async def add_items(self, ratings: Ratings, batch: int) -> None:
        """Load the whole catalogue, with genres, in batches."""
        ids = ratings.item_ids
        for start in tqdm(range(0, len(ids), batch), desc="add_items", unit="batch", leave=False):
            chunk = ids[start : start + batch]
            body = {"item_ids": chunk, "genres": [ratings.genres.get(i, []) for i in chunk]}
            await self._call(
                self.api, "POST", "/add_items", self.stats.add_items_latency, json=body
            )

    async def send_history(self, plan: UserPlan) -> None:
        """The user's earlier ratings, with their original timestamps."""
        for start in range(0, len(plan.history), MAX_ITEMS_PER_EVENT):
            chunk = plan.history[start : start + MAX_ITEMS_PER_EVENT]
            body = {
                "user_id": plan.user_id,
                "item_ids": [item for item, _, _ in chunk],
                "actions": [action for _, action, _ in chunk],
                "timestamp": max(ts for _, _, ts in chunk),
            }
            await self._call(
                self.collector, "POST", "/interact", self.stats.interact_latency, json=body
            )

    async def session(self, plan: UserPlan) -> None:
        """Ask, react to known items, pause, come back; stop at the round limit or deadline."""
        remaining = dict(plan.held_out)
        seen: set[str] = set()
        for _ in range(self.rounds):
            if time.monotonic() > self.deadline:
                return
            response = await self._call(
                self.api, "GET", f"/recs/{plan.user_id}?k={self.k}", self.stats.recs_latency
            )
            if response is None:
                continue
            items = [str(i) for i in response.json().get("item_ids", [])]
            stats = self.stats
            stats.lists.append(items)
            stats.short_lists += len(items) < self.k
            stats.repeats += sum(1 for i in items if i in seen)
            seen.update(items)
            relevant = {i for i, liked in remaining.items() if liked}
            hits = sum(1 for i in items if i in relevant)
            stats.precision.append(hits / self.k)
            stats.hits.append(hits > 0)
            stats.ndcg.append(list_ndcg(items, relevant, self.k))
            known = [i for i in items if i in remaining]
            if known:
                actions = ["like" if remaining.pop(i) else "dislike" for i in known]
                stats.likes += actions.count("like")
                stats.dislikes += actions.count("dislike")
                body = {
                    "user_id": plan.user_id,
                    "item_ids": known,
                    "actions": actions,
                    "timestamp": time.time(),
                }
                await self._call(
                    self.collector, "POST", "/interact", stats.interact_latency, json=body
                )
            long = self.rng.random() < self.long_pause_share
            pause = self.long_pause if long else self.short_pause
            await asyncio.sleep(self.rng.uniform(0.5, 1.5) * pause)


def check_loopback(url: str) -> None:
    """Refuse anything but a loopback address: the simulator is for local deployments."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise SystemExit(f"refusing non-loopback address {url!r}: the simulator only targets loopback")


async def run(
    ratings: Ratings,
    *,
    api_url: str,
    collector_url: str,
    admin_token: str | None = None,
    users: int = 100,
    concurrency: int = 16,
    rounds: int = 5,
    k: int = 10,
    batch: int = 500,
    history_fraction: float = 0.5,
    short_pause: float = 0.05,
    long_pause: float = 1.0,
    long_pause_share: float = 0.2,
    warmup: float = 0.0,
    max_seconds: float = 300.0,
    seed: int = 0,
    transport: httpx.AsyncBaseTransport | None = None,
    collector_transport: httpx.AsyncBaseTransport | None = None,
) -> Stats:
    """Replay ``ratings``; ``transport``s let tests point the clients at in-process apps."""
    stats = Stats()
    headers = {"X-Admin-Token": admin_token} if admin_token else {}
    deadline = time.monotonic() + max_seconds
    limits = httpx.Limits(max_connections=concurrency)
    async with (
        httpx.AsyncClient(
            base_url=api_url, headers=headers, timeout=10.0, limits=limits, transport=transport
        ) as api,
        httpx.AsyncClient(
            base_url=collector_url,
            timeout=10.0,
            limits=limits,
            transport=collector_transport or transport,
        ) as collector,
    ):
        sim = Simulator(
            api,
            collector,
            stats,
            k=k,
            rounds=rounds,
            short_pause=short_pause,
            long_pause=long_pause,
            long_pause_share=long_pause_share,
            deadline=deadline,
            seed=seed,
        )
        await sim.add_items(ratings, batch)
        user_plans = plans(ratings, users, history_fraction, seed)
        gate = asyncio.Semaphore(concurrency)

        async def bounded(coro: Any) -> None:
            async with gate:
                await coro

        with tqdm(total=len(user_plans), desc="history", unit="user", leave=False) as bar:
            for start in range(0, len(user_plans), concurrency * 4):
                chunk = user_plans[start : start + concurrency * 4]
                await asyncio.gather(*(bounded(sim.send_history(p)) for p in chunk))
                bar.update(len(chunk))
        if warmup > 0:
            log.info("waiting %.1fs for the trainer to pick up the history", warmup)
            await asyncio.sleep(min(warmup, max(0.0, deadline - time.monotonic())))
        with tqdm(total=len(user_plans), desc="sessions", unit="user", leave=False) as bar:

            async def one(plan: UserPlan) -> None:
                await bounded(sim.session(plan))
                bar.update(1)

            await asyncio.gather(*(one(p) for p in user_plans))
    return stats


def summary(stats: Stats, ratings: Ratings, k: int, seconds: float) -> dict[str, float]:
    """The figures printed at the end of a run."""
    index = {item: i for i, item in enumerate(ratings.item_ids)}
    genres = {index[i]: g for i, g in ratings.genres.items() if i in index}
    lists = [[index[i] for i in items if i in index] for items in stats.lists]
    recommended = {i for items in stats.lists for i in items}
    out = {
        "responses": float(len(stats.lists)),
        "online precision@k": float(np.mean(stats.precision)) if stats.precision else 0.0,
        "hit rate": float(np.mean(stats.hits)) if stats.hits else 0.0,
        "ndcg@k": float(np.mean(stats.ndcg)) if stats.ndcg else 0.0,
        "coverage": len(recommended) / max(1, len(ratings.item_ids)),
        "diversity": genre_diversity(lists, genres, k),
        "likes sent": float(stats.likes),
        "dislikes sent": float(stats.dislikes),
        "short lists": float(stats.short_lists),
        "repeated items": float(stats.repeats),
        "errors": float(sum(stats.errors.values())),
        "seconds": seconds,
    }
    for name, values in (
        ("recs", stats.recs_latency),
        ("interact", stats.interact_latency),
        ("add_items", stats.add_items_latency),
    ):
        for p, value in percentiles(values).items():
            out[f"{name} {p} ms"] = value
    return out


def report(console: Console, figures: dict[str, float], errors: Counter[str]) -> None:
    """Print the figures and the error breakdown."""
    table = Table(title="recsys simulate")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in figures.items():
        table.add_row(name, f"{value:.4f}" if value % 1 else f"{value:.0f}")
    console.print(table)
    for what, count in errors.most_common():
        console.print(f"[red]{count} x {what}[/red]")


# The history protocol's defaults; the shared options default to None so that
# ``--protocol cold`` can fill in its own (services.evaluation.online.Protocol).
HISTORY_DEFAULTS: dict[str, Any] = {
    "dataset": "synthetic",
    "users": 100,
    "concurrency": 16,
    "rounds": 5,
    "batch": 500,
    "max_seconds": 300.0,
}


def parser() -> argparse.ArgumentParser:
    """Command-line options of both protocols."""
    from services.evaluation import online

    p = argparse.ArgumentParser(prog="recsys simulate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument(
        "--protocol",
        choices=("history", "cold"),
        default="history",
        help="history: replay users' histories, then ask (this module); cold: fresh users "
        "with no history against recsys and a baseline (services/evaluation/online.py)",
    )
    p.add_argument(
        "--dataset", choices=("ml-100k", "synthetic"), default=None, help="history: synthetic"
    )
    p.add_argument("--api", default="http://127.0.0.1:5001")
    p.add_argument("--collector", default="http://127.0.0.1:5000")
    p.add_argument("--admin-token", default=None, help="sent as X-Admin-Token")
    p.add_argument("--users", type=int, default=None, help="history: 100, cold: 3000")
    p.add_argument("--concurrency", type=int, default=None, help="history: 16, cold: 50")
    p.add_argument(
        "--rounds", type=int, default=None, help="/recs calls per user (cold: per session)"
    )
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--batch", type=int, default=None, help="items per /add_items call")
    p.add_argument("--history-fraction", type=float, default=0.5)
    p.add_argument("--short-pause", type=float, default=0.05, help="seconds")
    p.add_argument("--long-pause", type=float, default=1.0, help="seconds")
    p.add_argument("--long-pause-share", type=float, default=0.2)
    p.add_argument("--warmup", type=float, default=0.0, help="seconds to wait after history")
    p.add_argument(
        "--max-seconds", type=float, default=None, help="history: 300 s, cold: 3600 s per run"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--synthetic-users", type=int, default=SyntheticConfig.users)
    p.add_argument("--synthetic-items", type=int, default=SyntheticConfig.items)
    online.add_options(p, shared=False)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``recsys simulate``; exit code 1 when any request failed."""
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # httpx logs every request at INFO: thousands of lines that bury the results.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.protocol == "cold":
        from services.evaluation import online

        return online.main(args)
    for name, default in HISTORY_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    for url in (args.api, args.collector):
        check_loopback(url)
    console = Console()
    if args.dataset == "ml-100k":
        ratings = load_ml100k(args.cache)
    else:
        ratings = generate(
            SyntheticConfig(users=args.synthetic_users, items=args.synthetic_items, seed=args.seed)
        )
    console.log(f"replaying {ratings.name} against {args.api} / {args.collector}")
    started = time.perf_counter()
    stats = asyncio.run(
        run(
            ratings,
            api_url=args.api,
            collector_url=args.collector,
            admin_token=args.admin_token,
            users=args.users,
            concurrency=args.concurrency,
            rounds=args.rounds,
            k=args.k,
            batch=args.batch,
            history_fraction=args.history_fraction,
            short_pause=args.short_pause,
            long_pause=args.long_pause,
            long_pause_share=args.long_pause_share,
            warmup=args.warmup,
            max_seconds=args.max_seconds,
            seed=args.seed,
        )
    )
    figures = summary(stats, ratings, args.k, time.perf_counter() - started)
    report(console, figures, stats.errors)
    return 1 if stats.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
