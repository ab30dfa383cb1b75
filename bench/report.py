"""Write docs/benchmarks.md and its PNG plots from a results JSON (bench/results/latest.json)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from statistics import median
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FIXES = ROOT / "bench" / "fixes"
MiB = 2**20


def _yes(flag: bool) -> str:
    return "met" if flag else "**missed**"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def plot_scale(scale: dict[str, Any]) -> list[str]:
    names = []
    for axis, key, label in (("users_axis", "users", "users"), ("items_axis", "items", "items")):
        points = [p for p in scale[axis] if "error" not in p]
        if not points:
            continue
        x = [p[key] for p in points]
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
        left.plot(x, [p["train_seconds"] for p in points], "o-", label="fit (LightFM + neighbours)")
        left.plot(x, [p["publish_seconds"] for p in points], "s-", label="serialise + publish")
        left.plot(x, [p["recs_p50_ms"] / 1000 for p in points], "^-", label="/recs p50 (s)")
        left.set_xscale("log")
        left.set_yscale("log")
        left.set_xlabel(label)
        left.set_ylabel("seconds")
        left.set_title(f"time vs {label}")
        left.legend(fontsize=8)
        right.plot(x, [p["train_peak_rss"] / MiB for p in points], "o-", label="trainer peak RSS")
        right.plot(x, [p["api_rss_serving"] / MiB for p in points], "s-", label="api RSS serving")
        right.plot(x, [p["blob_bytes"] / MiB for p in points], "^-", label="model blob")
        right.set_xscale("log")
        right.set_yscale("log")
        right.set_xlabel(label)
        right.set_ylabel("MiB")
        right.set_title(f"memory vs {label}")
        right.legend(fontsize=8)
        fig.tight_layout()
        name = f"benchmarks-scale-{label}.png"
        fig.savefig(DOCS / name, dpi=90)
        plt.close(fig)
        names.append(name)
    return names


def plot_throughput(results: dict[str, Any]) -> str | None:
    bars: list[tuple[str, float]] = []
    if "serving" in results:
        s = results["serving"]
        bars += [("hello GET", s["hello"]["ok_rps"]), ("/recs", s["recs"]["ok_rps"])]
    if "ingestion" in results:
        i = results["ingestion"]
        bars += [("hello POST", i["hello"]["ok_rps"]), ("/interact", i["interact"]["ok_rps"])]
    if not bars:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.5))
    colors = ["#999999", "#1f77b4"] * (len(bars) // 2)
    ax.bar([b[0] for b in bars], [b[1] for b in bars], color=colors)
    for n, (_, value) in enumerate(bars):
        ax.text(n, value, f"{value:,.0f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("requests/s (median of rounds)")
    ax.set_title("throughput next to the hello floor, same run, 50 connections")
    fig.tight_layout()
    name = "benchmarks-throughput.png"
    fig.savefig(DOCS / name, dpi=90)
    plt.close(fig)
    return name


def plot_training(training: dict[str, Any]) -> str:
    runs = {
        "lightfm, first cycle": training["single"]["first"],
        "lightfm, steady cycle": training["single"],
        "auto, first cycle": training["auto"]["first"],
        "auto, steady cycle": training["auto"],
    }
    phases = sorted(set().union(*(run["phases"] for run in runs.values())))
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.barh("bare LightFM fit", training["bare"]["seconds"], color="#999999")
    for number, (label, run) in enumerate(runs.items()):
        left = 0.0
        for phase in phases:
            value = run["phases"].get(phase, 0.0)
            ax.barh(label, value, left=left, label=phase if number == 0 else None)
            left += value
        rest = max(run["seconds"] - left, 0.0)
        ax.barh(label, rest, left=left, color="#dddddd", label="other" if number == 0 else None)
    ax.set_xlabel("seconds")
    ax.set_title(
        f"training on {training['interactions']:,} interactions, {training['epochs']} epochs"
    )
    ax.legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    name = "benchmarks-training.png"
    fig.savefig(DOCS / name, dpi=90)
    plt.close(fig)
    return name


def plot_freshness(freshness: dict[str, Any]) -> str:
    samples = sorted(freshness["samples_s"])
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot([s * 1000 for s in samples], [(n + 1) / len(samples) for n in range(len(samples))])
    ax.axvline(1000, color="red", linestyle="--", label="target p95 1 s")
    ax.set_xscale("log")
    ax.set_xlabel("ms from /interact 200 to /recs reflecting it")
    ax.set_ylabel("share of trials")
    ax.legend(fontsize=8)
    fig.tight_layout()
    name = "benchmarks-freshness.png"
    fig.savefig(DOCS / name, dpi=90)
    plt.close(fig)
    return name


def summary_rows(r: dict[str, Any]) -> list[str]:
    rows = [
        "| benchmark | recsys | floor (same run) | ratio | target | |",
        "|---|---|---|---|---|---|",
    ]
    if "serving" in r:
        s = r["serving"]
        rows.append(
            f"| serving `/recs` | {s['recs']['ok_rps']:,.0f} req/s, "
            f"p50 {s['recs']['p50_ms']:.1f} ms,"
            f" p99 {s['recs']['p99_ms']:.1f} ms | hello {s['hello']['ok_rps']:,.0f} req/s, "
            f"p99 {s['hello']['p99_ms']:.1f} ms | {s['ratio']['median']:.1%} | >= 50%, p99 < 20 ms"
            f" | ratio {_yes(s['met']['ratio'])}, p99 {_yes(s['met']['p99'])} |"
        )
    if "ingestion" in r:
        i = r["ingestion"]
        rows.append(
            f"| ingestion `/interact` | {i['interact']['ok_rps']:,.0f} events/s, "
            f"p99 {i['interact']['p99_ms']:.1f} ms, {i['missing']} lost of {i['accepted']:,} | "
            f"hello POST {i['hello']['ok_rps']:,.0f} req/s | {i['ratio']['median']:.1%} | >= 50%, "
            f"zero loss | ratio {_yes(i['met']['ratio'])}, loss {_yes(i['met']['zero_loss'])} |"
        )
    if "training" in r:
        t = r["training"]
        for key, name in (("single", "`RECSYS_MODEL=lightfm`"), ("auto", "default `auto`")):
            over = t["overhead_interleaved"][key]
            pairs = t[key]["interleaved"]
            rows.append(
                f"| training cycle, {name}, long-running trainer | {t[key]['seconds']:.1f} s "
                f"(median steady cycle), peak {t[key]['peak_rss'] / MiB:,.0f} MiB | bare "
                f"LightFM fit in the same process {median(pairs['bare_seconds']):.1f} s, peak "
                f"{t['bare']['peak_rss'] / MiB:,.0f} MiB (own process) | {over['wall']:+.0%} "
                f"wall, {over['cpu']:+.0%} CPU | <= +20% | {_yes(over['wall'] <= 0.2)} |"
            )
        job = t.get("job")
        if job:
            rows.append(
                f"| training cycle, `recsys train --once` (a Kubernetes Job) | "
                f"{job['seconds']:.1f} s, peak {job['peak_rss'] / MiB:,.0f} MiB | bare fit in "
                f"the same process {job['bare_seconds']:.1f} s | {job['overhead']:+.0%} | "
                f"<= +20% | {_yes(job['overhead'] <= 0.2)} |"
            )
    if "freshness" in r:
        f = r["freshness"]
        rows.append(
            f"| freshness | p50 {_ms(f['visible_p50_s'])}, p95 {_ms(f['visible_p95_s'])} | "
            f"(rating in Redis: p50 {_ms(f['stored_p50_s'])}, p95 {_ms(f['stored_p95_s'])}) | - |"
            f" p95 <= 1 s | {_yes(f['met']['p95'])} |"
        )
    return rows


def rounds_table(a: dict[str, Any], b: dict[str, Any], names: tuple[str, str]) -> list[str]:
    rows = [
        f"| round | {names[0]} req/s | p50 / p99 ms | {names[1]} req/s | p50 / p99 ms | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for n, (x, y) in enumerate(zip(a["rounds"], b["rounds"], strict=True), 1):
        rows.append(
            f"| {n} | {x['ok_rps']:,.0f} | {x['p50_ms']:.1f} / {x['p99_ms']:.1f} | "
            f"{y['ok_rps']:,.0f} | {y['p50_ms']:.1f} / {y['p99_ms']:.1f} | "
            f"{x['ok_rps'] / y['ok_rps']:.1%} |"
        )
    return rows


def fixes_section() -> list[str]:
    records = [json.loads(p.read_text()) for p in sorted(FIXES.glob("*.json"))]
    if not records:
        return []
    lines = [
        "## Hot-path fixes, measured A/B",
        "",
        "`bench/ab.py` serves the same instance from two processes, the code before and after "
        "a fix, and alternates wrk rounds between them (`bench/fixes/*.json`).",
        "",
        "| fix | when | before req/s | after req/s | after/before (min-max) | kept |",
        "|---|---|---|---|---|---|",
    ]
    for rec in records:
        if rec.get("kind") == "training":
            continue
        sp = rec["speedup"]
        lines.append(
            f"| {rec['note'] or rec['name']} | {rec['when']} | {rec['before']['ok_rps']:,.0f} | "
            f"{rec['after']['ok_rps']:,.0f} | "
            f"x{sp['median']:.2f} ({sp['min']:.2f}-{sp['max']:.2f}) |"
            f" {'yes' if rec.get('kept', True) else 'no'} |"
        )
    trainer = [rec for rec in records if rec.get("kind") == "training"]
    if trainer:
        lines += [
            "",
            "`bench/ab_train.py` runs the training cycle from the code before and after a fix, "
            "alternating, on the training benchmark's data:",
            "",
            "| fix | when | on | seconds before -> after | peak RSS before -> after |",
            "|---|---|---|---|---|",
        ]
        for rec in trainer:
            b, a = rec["before"], rec["after"]
            lines.append(
                f"| {rec['note'] or rec['name']} | {rec['when']} | {rec['target']} | "
                f"{b['seconds']:.1f} -> {a['seconds']:.1f} | "
                f"{b['peak_rss'] / MiB:,.0f} -> {a['peak_rss'] / MiB:,.0f} MiB |"
            )
    return [*lines, ""]


def cpu_table(ingestion: dict[str, Any]) -> list[str]:
    rows = ["| process | CPU ms per accepted event | per hello request |", "|---|---|---|"]
    hello = ingestion["cpu_ms_per_hello"]
    for name, value in ingestion["cpu_ms_per_event"].items():
        floor = hello.get(name if name != "collector" else "hello")
        rows.append(f"| {name} | {value:.3f} | {'' if floor is None else f'{floor:.3f}'} |")
    return rows


def _profile_block(results: dict[str, Any], name: str, title: str) -> list[str]:
    text = results.get("profile", {}).get(name)
    return [title, "", "```", text, "```", ""] if text else []


def render(results: dict[str, Any]) -> str:
    meta = results["meta"]
    out: list[str] = [
        "# Benchmarks",
        "",
        "Generated by `bench/run_all.py` from its own run; do not edit by hand. Regenerate with",
        "",
        "```sh",
        f".venv/bin/python bench/run_all.py{' --quick' if meta['quick'] else ''}",
        "```",
        "",
        f"Run {meta['started']} ({'quick' if meta['quick'] else 'full'} mode, "
        f"{meta['minutes']:.1f} min), commit `{meta['commit']}`, {meta['cpus']} CPUs, "
        f"{meta['mem_gib']:.0f} GiB; load average {meta['load_before']} before, "
        f"{meta['load_after']} after (other engineers' test suites share these cores).",
        "Absolute numbers on this shared machine drift a lot from minute to minute; every "
        "benchmark therefore runs recsys and its floor in the same run, interleaved round by "
        "round (A B B A ...), and reports the ratio. Load generator: wrk "
        "(2 threads, 50 connections) with Lua scripts in `bench/lua/` that vary user ids and "
        "POST bodies; the floor is `bench/hello.py`, one FastAPI JSON endpoint served by "
        "uvicorn with the services' own settings.",
        "",
        "## Summary",
        "",
        *summary_rows(results),
        "",
    ]
    throughput = plot_throughput(results)
    if throughput:
        out += [f"![throughput]({throughput})", ""]
    if "serving" in results:
        s = results["serving"]
        imp = s["impressions_after"]
        out += [
            "## 1. Serving: `/recs`",
            "",
            f"A LightFM model (trainer code, `fit_model`, published with "
            f"`FeedbackState.publish_model`) over {s['items']:,} items and {s['users']:,} users "
            f"({s['ratings']:,} ratings, also written to Redis so every request reads a real "
            f"history); the catalogue loaded through `/add_items`. wrk asks for random known "
            f"users and 10% cold ones, {s['rounds']} rounds of {s['seconds_per_round']:.0f} s "
            f"each. Impressions are recorded: after the run {imp['users_with_impressions']:,} "
            f"users had {imp['impressions']:,} shown items stored.",
            "",
            *rounds_table(s["recs"], s["hello"], ("/recs", "hello")),
            "",
            f"Errors: {s['recs']['non_2xx']} non-2xx, {s['recs']['socket_errors']} socket errors.",
            "",
        ]
        one = s.get("one_connection")
        if one:
            out += [
                "Service time without queueing (wrk, one connection): `/recs` p50 "
                f"{one['recs']['p50_ms']:.2f} ms, p99 {one['recs']['p99_ms']:.2f} ms "
                f"({one['recs']['ok_rps']:,.0f} req/s); hello p50 {one['hello']['p50_ms']:.2f} "
                f"ms, p99 {one['hello']['p99_ms']:.2f} ms. At 50 connections the rest of the "
                "latency is waiting for the one event loop.",
                "",
            ]
    out += _profile_block(
        results, "recs", "### Where /recs spends its time (py-spy, event-loop thread)"
    )
    if "serving" in results:
        out += serving_limits(results)
    if "ingestion" in results:
        i = results["ingestion"]
        rates = ", ".join(f"{x:,.0f}" for x in i["ingested_per_second_during_rounds"])
        out += [
            "## 2. Ingestion: `/interact`",
            "",
            "Every 200 means RabbitMQ confirmed a persistent message (one channel in confirm "
            "mode, asynchronous confirms). `recsys ingest` drains the queue at the same time "
            "into the fsynced log and Redis, on the same cores. wrk keeps the `event_id` of "
            "every 200; after the run the queue is drained and each id is looked up in the log.",
            "",
            *rounds_table(i["interact"], i["hello"], ("/interact", "hello POST")),
            "",
            f"Accepted {i['accepted']:,}; in the log {i['stored']:,} (requests still in "
            f"flight when wrk stopped are stored without wrk having seen their 200); "
            f"**lost: {i['missing']}**, duplicated in the log: {i['duplicates_in_log']}. "
            f"Ingester throughput while wrk ran: {rates} events/s; queue depth after the last "
            f"round {i['queue_depth_after_last_round']:,}, drained in "
            f"{i['drain_seconds']:.1f} s.",
            "",
            "CPU time by process during the `/interact` rounds (from /proc), against the hello "
            "server during its rounds:",
            "",
            *cpu_table(i),
            "",
        ]
    out += _profile_block(
        results,
        "interact",
        "### Where /interact spends its time (py-spy, collector event-loop thread)",
    )
    if "ingestion" in results:
        out += ingestion_limits(results)
    if "training" in results:
        out += training_section(results["training"])
    if "freshness" in results:
        f = results["freshness"]
        out += [
            "## 4. Freshness",
            "",
            f"{f['trials']} trials against the serving instance above with a collector and "
            "`recsys ingest` running: a known user likes the first item of the list they "
            "would get; the clock starts at the 200 of `/interact` and stops at the first "
            "`/recs` without that item (impressions and the prefetched list are cleared "
            "between polls so only the like can remove it; the ingester applies the rating "
            "and empties the user's list in one script, so this is also when the next "
            "request ranks with the like).",
            "",
            f"![freshness]({plot_freshness(f)})",
            "",
            f"p50 {_ms(f['visible_p50_s'])}, p95 {_ms(f['visible_p95_s'])}, max "
            f"{_ms(f['visible_max_s'])}, timeouts {f['timeouts']}. The rating reached Redis "
            f"after p50 {_ms(f['stored_p50_s'])} / p95 {_ms(f['stored_p95_s'])} (broker, "
            "ingester batch, fsync, Lua write); the rest is the next poll.",
            "",
        ]
    if "scale" in results:
        out += scale_section(results["scale"])
    out += fixes_section()
    if results.get("errors"):
        out += ["## Errors during the run", ""]
        out += [f"- {name}: `{error}`" for name, error in results["errors"].items()]
        out.append("")
    return "\n".join(out)


def _ratio_verdict(ratio: float, target: float) -> str:
    if ratio >= target:
        return f"The ratio target is met in this run ({ratio:.1%} of hello's rate)."
    return (
        f"The ratio target is missed by {target - ratio:.1%} of hello's rate "
        f"({ratio:.1%} against {target:.0%})."
    )


def serving_limits(r: dict[str, Any]) -> list[str]:
    s = r["serving"]
    ratio, p99 = s["ratio"]["median"], s["recs"]["p99_ms"]
    one = s.get("one_connection", {})
    fresh = one.get("fresh", {}).get("p50_ms")
    lines = ["### What limits /recs", "", _ratio_verdict(ratio, s["targets"]["ratio"])]
    if s["met"]["p99"]:
        lines.append(f"p99 {p99:.0f} ms at 50 connections meets the 20 ms target.")
    else:
        rps = s["recs"]["ok_rps"]
        lines.append(
            f"p99 is {p99:.0f} ms against 20 ms: with 50 connections always busy, the mean "
            f"latency is 50 / throughput = {50 / rps * 1000:.0f} ms at {rps:,.0f} req/s "
            "(Little's law), so p99 under 20 ms needs either ~2.5x this throughput on one "
            f"event loop or fewer requests in flight per process; hello's own p99 was "
            f"{s['hello']['p99_ms']:.0f} ms at its rate. One connection (no queueing) shows "
            "the service time itself."
        )
    lines += [
        "",
        "How a request is served now: a fresh ranking scores the catalogue and ranks "
        f"{s.get('prefetch_pages', 5)} pages at once (each page diversified on its "
        "own, property-tested equal to asking the pages one by one); the first is answered, "
        "the rest stored as the user's list in Redis. The next requests pop their page in one "
        "Lua step that skips anything rated or shown meanwhile and records the impressions, "
        "answered in front of FastAPI's middleware by a lane that does the middleware's "
        "bookkeeping itself (`services/common/fast_lane.py`; plain requests only: "
        "`explain`, odd queries and errors take the FastAPI route). A rating empties the "
        "user's list in the trainer's ingest script, so the next request ranks with it "
        "(freshness below). Users with no history share 8 rankings per copy of the bandit's "
        "counts, ranked one at a time in a worker thread. The "
        "trainer prefetches the lists of the most recently active users after it publishes "
        f"a model; for this benchmark all {s['users']:,} users were prefetched in "
        f"{s.get('prefetch_seconds', 0):.0f} s before the rounds; their lists took "
        f"{s.get('prefetch_redis_bytes', 0) / 2**20:.0f} MiB of Redis memory "
        f"({s.get('prefetch_redis_bytes', 0) / max(s['users'], 1):,.0f} bytes per user, "
        "expiring a day after their last use).",
        "",
        *answer_paths_lines(s, fresh),
        "",
        "Fixed on the way, each measured: the prefetched lists themselves (A/B table at the "
        "end); FastAPI's native OpenTelemetry hook, which looked up the tracer provider in "
        "`os.environ` on every request (18% of the api's CPU in py-spy; off unless "
        "`RECSYS_OPENTELEMETRY=true`; the hello floor keeps FastAPI's defaults); concurrent "
        "pops share one pipelined round trip (client CPU per pop 68 -> 26 us, same-process "
        "A/B); the serving state is frozen out of the cyclic garbage collector (a full "
        "collection walked the 50k-user model's dicts for 47 ms with every request waiting; "
        "p99 78-89 -> 43-59 ms in an interleaved A/B); earlier, BLAS pinned to one thread, "
        "hiredis, and the ranking's early stop. Then (2026-12-07): the lane in front of the "
        "middleware (its stack cost 13.6-14.9 us per request in-process, the lane 7.5-10); "
        "one socket write per response, headers with the body (uvicorn made two: api CPU "
        "per request 130 -> 122 us, `bench/ab.py`); the pop script's Redis time about "
        "halved (96-129 -> 50-75 us per pop, `INFO commandstats`): the count change log "
        "takes one entry per write instead of one ZADD per shown item, and shown and rated "
        "are checked with one SMISMEMBER and one HMGET per page; new users' rankings run in "
        "a worker thread instead of holding the event loop. Later the same day: the "
        "one-write response held its request's cycle strongly, making every request a "
        "reference cycle for the garbage collector (hello on our protocol, 8 s of wrk: "
        "3,566 collections taking 1,006 ms -> 13 taking 2 ms); a ranked answer sends its "
        "entries to Redis as one joined argument and the pop's shared keys are encoded once "
        "(api CPU per request 172 -> 151 us, A/B); the count refresh splits and "
        "deduplicates the change log page by page between its reads (all at once it held "
        "the event loop 12-20 ms every 2 s: an asyncio slow-callback trace of these rounds); "
        "the servers freeze what start-up built before serving (the collector's collections "
        "walked ~80,000 module objects: 429 -> 198 ms of collections in 8 s). Then "
        "(2026-12-08): the batched pops write their EVALSHAs themselves and read the replies "
        "under one deadline instead of through redis-py's pipeline (its generic packing and "
        "a timeout context per reply were about half the client's work per pop); a page's "
        "count log entry is tagged as impressions alone, so replicas' refreshes no longer "
        "read likes and dislikes for every shown item (two thirds of a refresh under /recs "
        "load); a fresh ranking's genre re-ranking reaches only the candidates sharing a "
        "genre with each pick (same pages, half the time). Together: api CPU per request "
        "165 -> 147 us in an interleaved A/B against the day before "
        "(`bench/fixes/session-serving.json`). What is left in the profile is uvicorn's "
        "own request handling and socket writes (the same work hello does), one Redis round "
        "trip, and the fresh rankings of users whose list ran out.",
        "",
    ]
    return lines


def answer_paths_lines(s: dict[str, Any], fresh: float | None) -> list[str]:
    """How the rounds' /recs answers were served, and what a user paging on would cost."""
    paths = s.get("answer_paths")
    one = s.get("one_connection", {})
    if not paths or fresh is None:
        return []
    total = max(sum(paths.values()), 1.0)
    hit = one["recs"]["p50_ms"]
    pages = s.get("prefetch_pages", 5)
    return [
        f"Of the rounds' `/recs` answers {paths['hit'] / total:.1%} were popped from a "
        f"prefetched list, {paths['new_user'] / total:.1%} went to users with no history "
        f"(a precomputed variant) and {paths['miss'] / total:.1%} were fresh rankings. This "
        "is the state right after the trainer prefetched every user. A user who keeps "
        f"paging gets a fresh ranking every {pages} pages once their list runs out: on one "
        f"connection a popped page is p50 {hit:.2f} ms and a fresh ranking (through the "
        f"FastAPI route) {fresh:.2f} ms, so such a user costs about "
        f"{((pages - 1) * hit + fresh) / pages:.2f} ms per page against hello's "
        f"{one['hello']['p50_ms']:.2f} ms.",
    ]


def ingestion_limits(r: dict[str, Any]) -> list[str]:
    i = r["ingestion"]
    cpu = i["cpu_ms_per_event"]
    total = sum(cpu.values())
    hello = sum(i["cpu_ms_per_hello"].values())
    ranked = ", ".join(
        f"{name} {value:.3f} ms" for name, value in sorted(cpu.items(), key=lambda kv: -kv[1])
    )
    busy = i.get("busy_cores")
    lines = [
        "### What limits /interact",
        "",
        _ratio_verdict(i["ratio"]["median"], i["targets"]["ratio"]),
    ]
    if busy:
        machine = busy["interact"]["machine"]
        # Near both cores busy, the rate is what the whole pipeline's CPU per event allows;
        # well below, the requests wait for the broker's confirms instead.
        why = (
            "the cores were nearly saturated, so the rate is bounded by the CPU one event "
            "costs across the pipeline (below), hello's by its one process"
            if machine >= 1.7
            else "a request mostly waits for RabbitMQ to persist and confirm its message "
            "while holding one of wrk's 50 connections, so more connections raise the rate "
            "(in a separate run before the queue-version change: 49% of hello at 50 "
            "connections, 55% at 100)"
        )
        lines.append(
            f"During the `/interact` rounds the machine had {machine:.2f} "
            f"of its cores busy ({busy['interact']['measured']:.2f} in the processes measured "
            f"here), against {busy['hello']['machine']:.2f} during hello's: {why}."
        )
    lines += [
        "",
        f"One accepted event costs {total:.3f} ms of CPU across the processes above against "
        f"{hello:.3f} ms for a hello request; by share: {ranked}. In py-spy the collector's "
        "time is uvicorn's HTTP handling (the work hello does), the publish (mostly the "
        "kernel's loopback send), then middleware, metrics and validation.",
        "",
        "RabbitMQ runs its queue as a classic queue v2 here (the only classic queue storage "
        "of the chart's RabbitMQ 4.4, which removed v1 in 4.3; applied to the bench's queue "
        "as a policy because the machine's broker is older and shared"
        + (
            ""
            if i.get("classic_queue_v2")
            else "; **not applied in this run**: rabbitmqctl unavailable or refused"
        )
        + "). Measured alternately on this machine (4 quick runs of 2 x 4 s): 4,973-5,440 "
        "and 4,008-4,258 events/s with v1, 5,868-6,064 and 5,405-5,982 with v2.",
        "",
        "Fixed (collector CPU per event 0.52 -> 0.13 ms, RabbitMQ's 0.18 -> 0.08 ms, "
        "interleaved A/B): a lean ASGI path for `POST /interact` with a JSON body validates "
        "with pydantic-core directly and answers a pre-built 200, anything else replays the "
        "body to the unchanged FastAPI route (same 4xx, tested side by side); publishes go "
        "through aiormq directly and all publishes of one event-loop turn leave in one socket "
        "write (about 18 per write under load), confirmed by aiormq's own tracking; metric "
        "series are cached, body wrappers skipped when Content-Length is known, requests "
        "without an Origin header skip CORS work, FastAPI's OpenTelemetry hook is off. "
        "Since 2026-12-07 a valid event is answered in front of the middleware stack "
        "(`services/common/fast_lane.py`, doing the stack's bookkeeping itself) with the "
        "headers and body in one socket write, and the ingest script logs each user's count "
        "changes as one entry instead of one ZADD per item. Later that day both servers "
        "stopped leaving each request as cyclic garbage (the one-write response held its "
        "request strongly; hello on the same protocol spent 12% of its time in collections) "
        "and freeze what start-up built before serving (the collector's collections under "
        "wrk, once the first fix was in: 429 -> 198 ms in 8 s). On 2026-12-08 the ingester "
        "applies up to 50 users' events per script call, each user's events as one joined "
        "argument (one call per user before): the ingester's CPU per event 0.087 -> 0.058 ms "
        "and Redis's 0.047 -> 0.035 ms, quick runs a day apart.",
        "",
    ]
    return lines


def _cycle_row(name: str, run: dict[str, Any], bare: float) -> str:
    return (
        f"| {name} | {run['seconds']:.1f} | {run['seconds'] / bare:.2f} | "
        f"{run['peak_rss'] / MiB:,.0f} MiB | {run.get('family') or '-'} |"
    )


def training_section(t: dict[str, Any]) -> list[str]:
    bare = t["bare"]["seconds"]
    lines = [
        "## 3. Training",
        "",
        f"{t['interactions']:,} synthetic interactions ({t['users']:,} users, "
        f"{t['items']:,} items, {t['likes']:,} likes) as the trainer's JSON-lines log. "
        f"LightFM WARP, 64 factors, learning rate 0.02, {t['epochs']} epochs, 2 threads, the "
        "same seed in the bare fit and in the cycle (fewer epochs than the served 60 keep the "
        "run bounded; the per-epoch cost is the same in both, so more epochs only lower the "
        "relative overhead). `bench/train_worker.py` runs what `recsys trainer` runs: one "
        "long-lived `Trainer` whose first cycle reads the whole log, selects the model family "
        "on a validation split and computes the item neighbours; then steady cycles, each "
        "after a slice of new events was appended to the log, which read only the new lines, "
        "fit the selected family once and reuse the neighbours (re-selection when the data "
        "grew 20% or every 50 cycles; neighbours refreshed when likes grew 5%); then one "
        "cycle that refreshes the neighbours. Each steady cycle is paired with a bare fit in "
        "the same process, alternating which goes first, so both see the same machine load; "
        "the ratio is the median of the pairs. Phases are timed by wrapping the functions "
        "the cycle calls.",
        "",
        f"![training]({plot_training(t)})",
        "",
        "| run | seconds | vs bare fit (own process) | peak RSS | model |",
        "|---|---|---|---|---|",
        f"| bare LightFM fit, own process (runs: "
        f"{', '.join(f'{x:.1f}' for x in t['bare']['runs'])} s) | {bare:.1f} | 1.00 | "
        f"{t['bare']['peak_rss'] / MiB:,.0f} MiB | lightfm |",
    ]
    for key, name in (("single", "`RECSYS_MODEL=lightfm`"), ("auto", "`auto` (default)")):
        run = t[key]
        lines += [
            _cycle_row(f"{name}: first cycle of a fresh trainer", run["first"], bare),
            _cycle_row(f"{name}: steady cycle (median)", run, bare),
            _cycle_row(f"{name}: cycle refreshing the neighbours", run["refresh"], bare),
        ]
    job = t.get("job")
    if job:
        lines.append(_cycle_row("`recsys train --once` after a previous Job", job, bare))
    lines += ["", "Steady cycles paired with a bare fit in the same process:", ""]
    lines += ["| model | steady s | bare s | wall ratio (median) | CPU ratio (median) |"]
    lines += ["|---|---|---|---|---|"]
    for key in ("single", "auto"):
        pairs = t[key]["interleaved"]
        lines.append(
            f"| {t[key]['family']} ({key}) | "
            f"{', '.join(f'{x:.1f}' for x in pairs['steady_seconds'])} | "
            f"{', '.join(f'{x:.1f}' for x in pairs['bare_seconds'])} | "
            f"{pairs['ratio_median']:.2f} | {pairs['cpu_ratio_median']:.2f} |"
        )
    lines += ["", "| phase (seconds) | lightfm first | lightfm steady | auto first | auto steady |"]
    lines += ["|---|---|---|---|---|"]
    runs = (t["single"]["first"], t["single"], t["auto"]["first"], t["auto"])
    for phase in sorted(set().union(*(run["phases"] for run in runs))):
        lines.append(
            f"| {phase} | "
            + " | ".join(f"{run['phases'].get(phase, 0):.1f}" for run in runs)
            + " |"
        )
    return [*lines, "", *training_limits(t)]


def training_limits(t: dict[str, Any]) -> list[str]:
    over = t["overhead_interleaved"]
    first = t["single"]["first"]["phases"]
    return [
        "### What limits the cycle",
        "",
        f"A steady cycle of the long-running trainer costs {over['single']['wall']:+.0%} wall "
        f"({over['single']['cpu']:+.0%} CPU) over the bare fit with one family and "
        f"{over['auto']['wall']:+.0%} ({over['auto']['cpu']:+.0%} CPU) in `auto`: nearly all "
        "its samples are in LightFM's epochs; reading the new lines and publishing are "
        "fractions of a second. The first cycle of a fresh trainer is what the target "
        "misses, and by how much the table says: it parses the whole JSON log "
        f"({first.get('read log', 0):.1f} s), builds the dataset "
        f"({first.get('dataset', 0):.1f} s), selects the family (a validation fit, its "
        "scoring, then the refit on everything) and computes the neighbours. "
        "Fixed (A/B at the end): the cycle used to do all of that every time (+560% "
        "lightfm, +673% auto); item co-occurrence neighbours are a sparse top-k instead "
        "of dense n x n work (3.7 -> 0.6 s) and the EASE step a float32 Cholesky solve "
        "instead of an inverse (3.0 -> 0.8 s, same weights to 3e-8); earlier, the log is "
        "streamed (peak memory halved).",
        "",
        *job_limits(t),
    ]


def job_limits(t: dict[str, Any]) -> list[str]:
    job = t.get("job")
    if not job:
        return []
    phases = job["phases"]
    fit = phases.get("fit (all families, incl. neighbours)", 0.0)
    rest = sorted(
        ((name, value) for name, value in phases.items() if not name.startswith("fit")),
        key=lambda kv: -kv[1],
    )
    listed = ", ".join(f"{name} {value:.2f} s" for name, value in rest if value >= 0.01)
    pairs = job["interleaved"]
    return [
        "A Kubernetes trainer Job (`recsys train --once`, a fresh process each interval) "
        "starts from what the previous Job left: the parsed log from a snapshot next to it "
        "(only later lines are read), the model selection from a record in Redis, the item "
        "neighbours from the published model (`services/trainer/carryover.py`). Paired with "
        "a bare fit in the same process it costs "
        f"{', '.join(f'{a:.1f}' for a in pairs['job_seconds'])} s against "
        f"{', '.join(f'{b:.1f}' for b in pairs['bare_seconds'])} s "
        f"({job['overhead']:+.0%} wall, {job['cpu_overhead']:+.0%} CPU; the interpreter's "
        f"start and imports add {job['import_seconds']:.1f} s more). Of the median Job, the "
        f"fit is {fit:.2f} s and the rest {sum(v for _, v in rest):.2f} s ({listed}); the "
        "fit inside a fresh process ran slower than the bare fit beside it, and the pairs "
        "swing by a second from run to run on this machine, so this ratio lands on either "
        "side of the target from one full run to the next. The first Job of an "
        f"instance has nothing to start from: {job['first']['seconds']:.1f} s "
        f"({job['first']['overhead']:+.0%}).",
        "",
    ]


def scale_section(scale: dict[str, Any]) -> list[str]:
    lines = [
        "## 5. Scale",
        "",
        f"Synthetic data with about {scale['per_user']:g} ratings per user; LightFM "
        f"(trainer code, single family) with {scale['epochs']} epoch(s), so fit time is "
        "per epoch plus the neighbour step; each fit in its own process (peak RSS). An api "
        "process then serves the published model with its catalogue: resident memory after "
        "loading, time of the first request (model load) and sequential `/recs` latency, "
        "each request a different user's first, so a fresh ranking (nothing prefetched).",
        "",
    ]
    lines += [f"![{name}]({name})" for name in plot_scale(scale)]
    lines += [
        "",
        "| users | items | interactions | fit s | publish s | blob MiB | trainer peak MiB |"
        " api RSS MiB | model load s | /recs p50 ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    seen = set()
    for p in [*scale["users_axis"], *scale["items_axis"]]:
        key = (p.get("users"), p.get("items"))
        if key in seen:
            continue
        seen.add(key)
        if "error" in p:
            lines.append(f"| {p['users']:,} | {p['items']:,} | failed: {p['error']} |")
            continue
        lines.append(
            f"| {p['users']:,} | {p['items']:,} | {p['interactions']:,} | "
            f"{p['train_seconds']:.1f} | {p['publish_seconds']:.2f} | "
            f"{p['blob_bytes'] / MiB:,.0f} | {p['train_peak_rss'] / MiB:,.0f} | "
            f"{p['api_rss_serving'] / MiB:,.0f} | {p['model_load_seconds']:.2f} | "
            f"{p['recs_p50_ms']:.1f} |"
        )
    lines.append("")
    lines += scale_growth(scale)
    return lines


def scale_growth(scale: dict[str, Any]) -> list[str]:
    """How fit time and memory grew along each axis, from the first to the last point."""
    out: list[str] = []
    for axis, key in (("users_axis", "users"), ("items_axis", "items")):
        points = [p for p in scale[axis] if "error" not in p]
        if len(points) < 2:
            continue
        a, b = points[0], points[-1]
        out.append(
            f"- {key} x{b[key] / a[key]:,.0f} ({a[key]:,} -> {b[key]:,}): fit time "
            f"x{b['train_seconds'] / a['train_seconds']:.1f}, trainer peak memory "
            f"x{b['train_peak_rss'] / a['train_peak_rss']:.1f}, model blob "
            f"x{b['blob_bytes'] / a['blob_bytes']:.1f}, api RSS "
            f"x{b['api_rss_serving'] / a['api_rss_serving']:.1f}, /recs p50 "
            f"x{b['recs_p50_ms'] / a['recs_p50_ms']:.1f}."
        )
    if out:
        out = [
            "Growth end to end (users grow the factor matrix and the id index linearly; "
            "items grow the fresh ranking's scoring linearly, and the trainer's neighbour "
            "step, a sparse co-occurrence top-k plus an EASE solve capped at the 4,000 most "
            "liked items, stays far from quadratic):",
            "",
            *out,
            "",
        ]
    return out


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "bench" / "results" / "latest.json"
    results = json.loads(path.read_text())
    DOCS.mkdir(exist_ok=True)
    (DOCS / "benchmarks.md").write_text(render(results))
    print(f"wrote {DOCS / 'benchmarks.md'}")


if __name__ == "__main__":
    main()
