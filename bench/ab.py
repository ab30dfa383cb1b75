"""A/B of a hot-path fix: two api (or collector) processes, old and new code, same run.

    python bench/ab.py NAME --before DIR [--before-env K=V ...] [--after-env K=V ...]
                       [--target recs|interact] [--rounds 3] [--seconds 8]

``DIR`` holds a copy of ``services/`` as it was before the fix (for an environment-only fix
pass the repository itself and change the environment). Both processes serve the same
instance (same Redis keys, model and catalogue); wrk alternates between them round by round
and the per-round ratio after/before is reported. The result is kept in
``bench/fixes/NAME.json`` and shown by ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fixture import serving_instance
from bench.lib import (
    ROOT,
    WrkResult,
    cpu_seconds,
    free_port,
    interleaved,
    log,
    paired_ratio,
    summarise,
    wrk,
)

FIXES = ROOT / "bench" / "fixes"


def _pairs(values: list[str]) -> dict[str, str]:
    return dict(value.split("=", 1) for value in values)


def start(
    source: Path, component: str, env: dict[str, str], extra: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    key = "RECSYS_API_PORT" if component == "api" else "RECSYS_COLLECTOR_PORT"
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", component],
        env={
            **env,
            "PYTHONPATH": str(source),
            key: str(port),
            # No probe ports: two servers run side by side, and nothing probes them.
            "RECSYS_API_HEALTH_PORT": "0",
            "RECSYS_COLLECTOR_HEALTH_PORT": "0",
            **extra,
        },
        cwd=source,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, f"http://127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name")
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--before-env", nargs="*", default=[])
    parser.add_argument("--after-env", nargs="*", default=[])
    parser.add_argument("--target", choices=["recs", "interact"], default="recs")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--note", default="")
    args = parser.parse_args()

    component = "api" if args.target == "recs" else "collector"
    setup = serving_instance(50_000, 20_000, mean_ratings=12, epochs=3, components=("api",))
    children: list[subprocess.Popen[bytes]] = []
    try:
        env = setup.instance.env()
        before, before_url = start(args.before, component, env, _pairs(args.before_env))
        after, after_url = start(ROOT, component, env, _pairs(args.after_env))
        children += [before, after]
        setup.instance.wait_healthy(before_url, after_url)
        script = "recs.lua" if args.target == "recs" else "interact.lua"
        for url in (before_url, after_url):  # warm up: loads the model
            wrk(url, script, seconds=2)
        cpu: dict[str, list[float]] = {"before": [], "after": []}

        def measured(name: str, pid: int, url: str) -> Callable[[], WrkResult]:
            # CPU per request of the process under test: unlike req/s, it hardly moves with
            # what else the two cores are doing during the round.
            def run() -> WrkResult:
                used = cpu_seconds(pid)
                result = wrk(url, script, seconds=args.seconds)
                cpu[name].append((cpu_seconds(pid) - used) / max(1, result.ok) * 1e6)
                return result

            return run

        results = interleaved(
            args.rounds,
            {
                "before": measured("before", before.pid, before_url),
                "after": measured("after", after.pid, after_url),
            },
        )
        ratio = paired_ratio(results["after"], results["before"])
        cpu_us = {name: median(values) for name, values in cpu.items()}
        record = {
            "name": args.name,
            "note": args.note,
            "target": args.target,
            "when": time.strftime("%Y-%m-%d %H:%M"),
            "before": summarise(results["before"]),
            "after": summarise(results["after"]),
            "speedup": ratio,
            "cpu_us_per_request": cpu_us,
        }
        FIXES.mkdir(parents=True, exist_ok=True)
        (FIXES / f"{args.name}.json").write_text(json.dumps(record, indent=1))
        log(
            f"{args.name}: before {record['before']['ok_rps']:,.0f} req/s, "
            f"after {record['after']['ok_rps']:,.0f} req/s, x{ratio['median']:.2f}; CPU per "
            f"request {cpu_us['before']:.0f} -> {cpu_us['after']:.0f} us"
        )
    finally:
        for child in children:
            child.terminate()
            child.wait(20)
        setup.instance.close()


if __name__ == "__main__":
    main()
