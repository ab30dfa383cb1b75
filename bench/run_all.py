"""Run every benchmark, each next to its floor, and regenerate docs/benchmarks.md + plots.

    .venv/bin/python bench/run_all.py            # full run, about 12 minutes
    .venv/bin/python bench/run_all.py --quick    # smaller sizes and rounds, under 5 minutes
    .venv/bin/python bench/run_all.py --only serving,freshness

Needs Redis on 127.0.0.1:6379 and RabbitMQ on 127.0.0.1:5672 (guest/guest), or
BENCH_REDIS_URL / BENCH_AMQP_URL; installs wrk with apt-get when it is missing. Every
instance uses its own key prefix and queue and is wiped afterwards. Loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

try:
    import matplotlib  # noqa: F401 - the report draws its plots with it
except ImportError:
    sys.exit("bench/run_all.py needs matplotlib: .venv/bin/pip install matplotlib py-spy")

from bench import freshness, ingestion, report, scale, serving, training
from bench.fixture import serving_instance
from bench.lib import ROOT, ensure_wrk, log

STAGES = ("serving", "freshness", "ingestion", "training", "scale", "profile")

FULL: dict[str, Any] = {
    "serving": {"users": 50_000, "items": 20_000, "mean_ratings": 12, "epochs": 3},
    "serving_load": {"rounds": 3, "seconds": 10, "connections": 50},
    "ingestion": {"rounds": 3, "seconds": 10, "connections": 50},
    "freshness": {"trials": 50},
    "training": {"users": 100_000, "items": 20_000, "mean_ratings": 11, "epochs": 5},
    "scale": {
        "user_axis": [10_000, 100_000, 1_000_000],
        "item_axis": [1_000, 10_000, 100_000],
        "fixed_items": 10_000,
        "fixed_users": 100_000,
        "per_user": 5,
        "epochs": 1,
    },
    "profile_seconds": 10,
}
QUICK: dict[str, Any] = {
    "serving": {"users": 50_000, "items": 20_000, "mean_ratings": 12, "epochs": 3},
    "serving_load": {"rounds": 2, "seconds": 4, "connections": 50},
    "ingestion": {"rounds": 2, "seconds": 4, "connections": 50},
    "freshness": {"trials": 20},
    "training": {"users": 10_000, "items": 2_000, "mean_ratings": 11, "epochs": 2},
    "scale": {
        "user_axis": [10_000, 50_000],
        "item_axis": [1_000, 5_000],
        "fixed_items": 2_000,
        "fixed_users": 10_000,
        "per_user": 5,
        "epochs": 1,
    },
    "profile_seconds": 0,
}


def machine() -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"commit": commit, "cpus": os.cpu_count(), "mem_gib": mem}


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, < 5 minutes")
    parser.add_argument("--only", default=",".join(STAGES), help="comma-separated stages")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    args = parser.parse_args()
    cfg = QUICK if args.quick else FULL
    stages = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(stages) - set(STAGES)
    if unknown:
        parser.error(f"unknown stages {sorted(unknown)}; choose from {STAGES}")
    if args.quick and "profile" in stages and args.only == ",".join(STAGES):
        stages.remove("profile")

    ensure_wrk()
    started = time.monotonic()
    results: dict[str, Any] = {
        "meta": {
            **machine(),
            "quick": args.quick,
            "started": time.strftime("%Y-%m-%d %H:%M %Z"),
            "load_before": load(),
            "config": cfg,
        },
        "errors": {},
    }

    def attempt(name: str, fn: Any) -> None:
        stage_started = time.monotonic()
        try:
            results[name] = fn()
        except Exception as error:  # keep going: a failed stage is reported, not fatal
            log(f"{name} failed: {error!r}")
            results["errors"][name] = repr(error)[:500]
        log(f"{name} took {time.monotonic() - stage_started:.0f}s")

    if "serving" in stages or "freshness" in stages:
        log("setting up the serving instance")
        setup = serving_instance(**cfg["serving"], components=("api", "collector", "ingest"))
        try:
            setup.instance.wait_healthy(setup.instance.collector)
            if "serving" in stages:
                attempt("serving", lambda: serving.run(setup, **cfg["serving_load"]))
            if "freshness" in stages:
                attempt("freshness", lambda: freshness.run(setup, **cfg["freshness"]))
        finally:
            setup.instance.close()
    if "ingestion" in stages:
        attempt("ingestion", lambda: ingestion.run(**cfg["ingestion"]))
    if "training" in stages:
        attempt("training", lambda: training.run(**cfg["training"]))
    if "scale" in stages:
        attempt("scale", lambda: scale.run(**cfg["scale"]))
    if "profile" in stages and cfg["profile_seconds"]:
        from bench.profile import profile

        seconds = cfg["profile_seconds"]
        attempt(
            "profile",
            lambda: {
                "recs": profile("recs", seconds, 50_000, 20_000),
                "interact": profile("interact", seconds, 50_000, 20_000),
            },
        )

    results["meta"]["minutes"] = (time.monotonic() - started) / 60
    results["meta"]["load_after"] = load()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1))
    (ROOT / "docs").mkdir(exist_ok=True)
    (ROOT / "docs" / "benchmarks.md").write_text(report.render(results))
    log(
        f"results in {args.output}; wrote docs/benchmarks.md ({results['meta']['minutes']:.1f} min)"
    )


if __name__ == "__main__":
    main()
