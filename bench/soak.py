"""Soak run: a steady mixed load on /recs and /interact for minutes, loopback only.

Starts its own api, collector and trainer (bench.lib.Instance: own key prefix, queue and
data dir on the Redis and RabbitMQ of BENCH_REDIS_URL / BENCH_AMQP_URL), adds a catalogue,
then holds a paced load (open loop, fixed rates) bounded in time and in request count.
Reports errors and latency percentiles per time window, the RSS of each process after
warm-up and at the end against a stated bound, and audits that every accepted event reached
the durable log exactly once. Exit code 1 when errors, loss or memory growth exceed bounds.

    python -m bench.soak --duration 180 --recs-rate 80 --interact-rate 40
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.lib import BENCH, Instance, log, pct, rss_bytes

COMPONENTS = ("api", "collector", "trainer")


@dataclass
class Sample:
    at: float  # seconds since the load started
    kind: str  # recs | interact
    status: int  # 0: no answer (connection error, timeout)
    seconds: float


@dataclass
class Load:
    args: argparse.Namespace
    instance: Instance
    items: list[str]
    samples: list[Sample] = field(default_factory=list)
    accepted_ids: list[str] = field(default_factory=list)
    rss: dict[str, list[tuple[float, int]]] = field(default_factory=dict)

    async def run(self) -> None:
        limits = httpx.Limits(max_connections=self.args.concurrency)
        async with (
            httpx.AsyncClient(base_url=self.instance.api, timeout=10, limits=limits) as api,
            httpx.AsyncClient(base_url=self.instance.collector, timeout=10, limits=limits) as col,
        ):
            started = time.monotonic()
            slots = asyncio.Semaphore(self.args.concurrency)
            tasks: set[asyncio.Task[None]] = set()
            sampler = asyncio.create_task(self._sample_rss(started))
            rng = random.Random(11)
            total_rate = self.args.recs_rate + self.args.interact_rate
            share_recs = self.args.recs_rate / total_rate
            sent = 0
            while True:
                now = time.monotonic() - started
                if now >= self.args.duration or sent >= self.args.max_requests:
                    break
                # Open loop: the schedule does not wait for answers (bounded by `slots`).
                due = sent / total_rate
                if due > now:
                    await asyncio.sleep(due - now)
                await slots.acquire()
                kind = "recs" if rng.random() < share_recs else "interact"
                task = asyncio.create_task(self._one(kind, api, col, rng, started, slots))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1
            await asyncio.gather(*tasks)
            sampler.cancel()

    async def _one(
        self,
        kind: str,
        api: httpx.AsyncClient,
        col: httpx.AsyncClient,
        rng: random.Random,
        started: float,
        slots: asyncio.Semaphore,
    ) -> None:
        user = f"soak-{rng.randrange(self.args.users)}"
        begin = time.monotonic()
        try:
            if kind == "recs":
                response = await api.get(f"/recs/{user}")
            else:
                picks = rng.sample(self.items, 3)
                actions = ["like" if rng.random() < 0.8 else "dislike" for _ in picks]
                event = {"user_id": user, "item_ids": picks, "actions": actions}
                response = await col.post("/interact", json=event)
                if response.status_code == 200:
                    self.accepted_ids.append(response.json()["event_id"])
            status = response.status_code
        except httpx.HTTPError:
            status = 0
        finally:
            slots.release()
        self.samples.append(Sample(begin - started, kind, status, time.monotonic() - begin))

    async def _sample_rss(self, started: float) -> None:
        while True:
            at = time.monotonic() - started
            for name, process in self.instance.processes.items():
                self.rss.setdefault(name, []).append((at, rss_bytes(process.pid)))
            await asyncio.sleep(5)


def windows(samples: list[Sample], width: float) -> list[dict[str, Any]]:
    """Per window and kind: count, errors (non-200), p50/p95/p99 latency in ms."""
    rows = []
    end = max((s.at for s in samples), default=0)
    start = 0.0
    while start <= end:
        for kind in ("recs", "interact"):
            chosen = [s for s in samples if start <= s.at < start + width and s.kind == kind]
            latencies = [s.seconds * 1000 for s in chosen if s.status == 200]
            rows.append(
                {
                    "window_s": f"{start:.0f}-{start + width:.0f}",
                    "kind": kind,
                    "count": len(chosen),
                    "errors": sum(1 for s in chosen if s.status != 200),
                    "p50_ms": round(pct(latencies, 50), 1),
                    "p95_ms": round(pct(latencies, 95), 1),
                    "p99_ms": round(pct(latencies, 99), 1),
                }
            )
        start += width
    return rows


def logged_event_ids(path: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    if path.exists():
        for line in path.read_bytes().splitlines():
            counts[json.loads(line)["event_id"]] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=180, help="seconds of load")
    parser.add_argument("--max-requests", type=int, default=100_000, help="hard request cap")
    parser.add_argument("--recs-rate", type=float, default=80, help="GET /recs per second")
    parser.add_argument("--interact-rate", type=float, default=40, help="POST /interact per s")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight, max")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--window", type=float, default=30, help="report window, seconds")
    parser.add_argument("--warmup", type=float, default=20, help="RSS baseline after this")
    parser.add_argument("--rss-bound-mib", type=float, default=64, help="max RSS growth")
    parser.add_argument("--train-interval", type=float, default=15)
    args = parser.parse_args(argv)

    instance = Instance(
        "soak",
        extra_env={"TRAIN_INTERVAL": str(args.train_interval), "RECSYS_MODEL": "auto"},
    )
    try:
        for name in COMPONENTS:
            instance.start(name)
        instance.wait_healthy(instance.api, instance.collector)
        items = [f"item-{i}" for i in range(args.items)]
        genres = [[("Drama", "Comedy", "Action", "Horror")[i % 4]] for i in range(args.items)]
        httpx.post(
            f"{instance.api}/add_items", json={"item_ids": items, "genres": genres}, timeout=30
        ).raise_for_status()
        log(
            f"soak: {args.duration:.0f}s, {args.recs_rate}/s /recs + {args.interact_rate}/s "
            f"/interact, {args.users} users, {args.items} items"
        )
        load = Load(args, instance, items)
        asyncio.run(load.run())
        log("load done; waiting for the trainer to drain the queue")
        deadline = time.monotonic() + 60
        accepted = set(load.accepted_ids)
        while time.monotonic() < deadline:
            if accepted <= set(logged_event_ids(instance.data_dir / "interactions.log")):
                break
            time.sleep(1)
        logged = logged_event_ids(instance.data_dir / "interactions.log")
        model = httpx.get(f"{instance.api}/model", timeout=10).json()
    finally:
        rss_end = {n: rss_bytes(p.pid) for n, p in instance.processes.items() if p.poll() is None}
        alive = {n: p.poll() is None for n, p in instance.processes.items()}
        instance.close()

    table = windows(load.samples, args.window)
    memory = {}
    for name, series in load.rss.items():
        baseline = next((b for at, b in series if at >= args.warmup), series[0][1])
        end = rss_end.get(name, 0)
        memory[name] = {
            "rss_first_mib": round(series[0][1] / 2**20, 1),
            "rss_after_warmup_mib": round(baseline / 2**20, 1),
            "rss_end_mib": round(end / 2**20, 1),
            "growth_mib": round((end - baseline) / 2**20, 1),
        }
    statuses = Counter((s.kind, s.status) for s in load.samples)
    lost = len(accepted - set(logged))
    duplicates = sum(c - 1 for c in logged.values() if c > 1)
    summary = {
        "args": vars(args),
        "requests": len(load.samples),
        "statuses": {f"{k} {s}": n for (k, s), n in sorted(statuses.items())},
        "errors": sum(1 for s in load.samples if s.status != 200),
        "accepted_events": len(accepted),
        "lost_events": lost,
        "duplicate_events": duplicates,
        "model": {k: model.get(k) for k in ("version", "family", "users", "items")},
        "processes_alive": alive,
        "memory": memory,
        "windows": table,
    }
    out = BENCH / "results" / f"soak-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))

    print(
        f"\n{'window s':>10} {'kind':>9} {'count':>6} {'errors':>6} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}"
    )
    for row in table:
        print(
            f"{row['window_s']:>10} {row['kind']:>9} {row['count']:>6} {row['errors']:>6} "
            f"{row['p50_ms']:>7} {row['p95_ms']:>7} {row['p99_ms']:>7}"
        )
    print("\nmemory (MiB):", json.dumps(memory, indent=1))
    print(
        f"requests {summary['requests']}, errors {summary['errors']}, statuses "
        f"{summary['statuses']}"
    )
    print(
        f"events accepted {len(accepted)}, lost {lost}, duplicates {duplicates}; "
        f"model {summary['model']}"
    )
    print(f"results: {out}")
    over = [n for n, m in memory.items() if m["growth_mib"] > args.rss_bound_mib]
    ok = (
        summary["errors"] == 0
        and lost == 0
        and duplicates == 0
        and not over
        and all(alive.values())
    )
    print("PASS" if ok else f"FAIL (RSS over {args.rss_bound_mib} MiB: {over})")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
