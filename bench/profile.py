"""Profile a running component under wrk load with py-spy; print where its CPU goes.

    python bench/profile.py recs [--seconds 10] [--users 50000 --items 20000]
    python bench/profile.py interact

py-spy (PyPI) samples the process from outside, so the numbers are the real hot path.
Only the event loop thread is counted (idle thread-pool workers would swamp the table).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fixture import serving_instance
from bench.lib import WORK, log, wrk

LOOP_FRAME = "Runner.run"


def aggregate(raw: Path, top: int = 25) -> str:
    """Self and inclusive shares of the event-loop thread's samples, from py-spy raw output."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if LOOP_FRAME not in stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return "no samples"
    lines = [f"event-loop samples: {total}", "self:"]
    lines += [f"  {c / total:6.1%}  {f}" for f, c in own.most_common(top)]
    lines.append("inclusive (below 90%):")
    lines += [
        f"  {c / total:6.1%}  {f}"
        for f, c in inclusive.most_common(top * 4)
        if c / total < 0.9 and "services/" in f
    ][:top]
    return "\n".join(lines)


def profile(target: str, seconds: float, users: int, items: int) -> str:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    components = ("api",) if target == "recs" else ("api", "collector", "ingest")
    setup = serving_instance(users, items, mean_ratings=12, epochs=3, components=components)
    raw = WORK / f"profile-{target}.raw"
    try:
        component = "api" if target == "recs" else "collector"
        pid = setup.instance.processes[component].pid
        sampler = subprocess.Popen(
            [
                spy,
                "record",
                "-p",
                str(pid),
                "-d",
                str(int(seconds)),
                "-r",
                "100",
                "--format",
                "raw",
                "-o",
                str(raw),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if target == "recs":
            result = wrk(
                setup.instance.api, "recs.lua", seconds=seconds, env={"BENCH_USERS": "50000"}
            )
        else:
            result = wrk(setup.instance.collector, "interact.lua", seconds=seconds)
        sampler.wait(seconds + 30)
        log(f"under py-spy: {result.ok_rps:,.0f} ok req/s, p99 {result.p99_ms:.1f} ms")
        return aggregate(raw)
    finally:
        setup.instance.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target", choices=["recs", "interact"])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--items", type=int, default=20_000)
    args = parser.parse_args()
    print(profile(args.target, args.seconds, args.users, args.items))


if __name__ == "__main__":
    main()
