"""A/B of a trainer fix: the cycle from old and new code, alternating, same data and run.

    python bench/ab_train.py NAME --before DIR [--model lightfm] [--rounds 2] [--note TEXT]

``DIR`` holds a copy of ``services/`` from before the fix, and of ``bench/`` too when the
worker's interface changed since (it comes first on PYTHONPATH, so the old code runs its own
worker). Uses the full training data set of bench/training.py (1M interactions); records
seconds and peak RSS in bench/fixes/NAME.json. The current worker reports its median steady
cycle (a long-running trainer after its first cycle); ``first`` in each run is the cycle of
a fresh trainer.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.lib import REDIS_URL, ROOT, WORK, log, median
from bench.training import dataset, wipe

FIXES = ROOT / "bench" / "fixes"


def cycle(source: Path, log_path: Path, model: str, epochs: int, prefix: str) -> dict[str, Any]:
    completed = subprocess.run(
        [
            *(sys.executable, "-m", "bench.train_worker", "cycle", "--log", str(log_path)),
            *("--model", model, "--epochs", str(epochs), "--prefix", prefix, "--redis", REDIS_URL),
        ],
        capture_output=True,
        text=True,
        cwd=WORK,
        timeout=1200,
        check=False,
        env={
            "PYTHONPATH": f"{source}:{ROOT}",
            "RECSYS_LOG_LEVEL": "WARNING",
            "PATH": "/usr/bin:/bin",
        },
    )
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr[-3000:])
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name")
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--model", default="lightfm")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    _, log_path, interactions = dataset(100_000, 20_000, 11)
    prefix = f"bench:abtrain-{uuid.uuid4().hex[:6]}:"
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    try:
        for round_no in range(args.rounds):
            order = ["before", "after"] if round_no % 2 == 0 else ["after", "before"]
            for name in order:
                source = args.before if name == "before" else ROOT
                result = cycle(source, log_path, args.model, args.epochs, prefix)
                runs[name].append(result)
                first = result.get("first")
                log(
                    f"  {name}: {result['seconds']:.1f}s, peak "
                    f"{result['peak_rss'] / 2**20:,.0f} MiB, "
                    f"read {result['phases'].get('read log', 0):.1f}s"
                    + (f"; first cycle {first['seconds']:.1f}s" if first else "")
                )
    finally:
        wipe(prefix)

    def summary(rs: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "seconds": median(r["seconds"] for r in rs),
            "peak_rss": median(r["peak_rss"] for r in rs),
            "runs": [
                {
                    "seconds": r["seconds"],
                    "peak_rss": r["peak_rss"],
                    **({"first_seconds": r["first"]["seconds"]} if "first" in r else {}),
                }
                for r in rs
            ],
        }

    before, after = summary(runs["before"]), summary(runs["after"])
    record = {
        "name": args.name,
        "note": args.note,
        "target": f"training cycle ({args.model}, {interactions:,} interactions)",
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "kind": "training",
        "before": before,
        "after": after,
        "kept": True,
    }
    FIXES.mkdir(parents=True, exist_ok=True)
    (FIXES / f"{args.name}.json").write_text(json.dumps(record, indent=1))
    log(
        f"{args.name}: {before['seconds']:.1f}s -> {after['seconds']:.1f}s, peak "
        f"{before['peak_rss'] / 2**20:,.0f} -> {after['peak_rss'] / 2**20:,.0f} MiB"
    )


if __name__ == "__main__":
    main()
