"""The online cold-start benchmark against a fresh recsys deployment; regenerates the "online"
section of docs/quality.md and its learning-curve plot.

    .venv/bin/python bench/online.py      # the full run: 3,000 users over 24,460 items
    .venv/bin/python bench/online.py --users 200 --catalogue-size 5000 --session-gap 5

The api, collector and trainer start as real processes on free ports against the real Redis
and RabbitMQ (BENCH_REDIS_URL / BENCH_AMQP_URL), with their own key prefix and queue, wiped
afterwards. The baseline server runs the same scenario first, then recsys
(services/evaluation/online.py). Every option of ``recsys simulate --protocol cold`` passes
through. Needs matplotlib. Loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from rich.console import Console

from bench.lib import ROOT, WORK, Instance, log
from services.evaluation import online

DOC = ROOT / "docs" / "quality.md"
PLOT = ROOT / "docs" / "quality-online.png"


def commit() -> str:
    """The code measured: HEAD, marked when services/ has uncommitted changes.

    BENCH_COMMIT overrides it (a run from an exported tree, which has no git).
    """
    if os.environ.get("BENCH_COMMIT"):
        return os.environ["BENCH_COMMIT"]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "services"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
    except OSError:
        return ""
    return f"{head} with uncommitted changes" if head and dirty else head


def served_model(api: str) -> str:
    """The model recsys served at the end of its run, for the report."""
    try:
        response = httpx.get(f"{api}/model", timeout=5)
    except httpx.HTTPError:
        return "unknown"
    if response.status_code != 200:
        return f"none (HTTP {response.status_code})"
    body = response.json()
    return f"{body.get('model', '?')} version {body.get('version', '?')}"


# Where the output goes does not change the figures: left out of the command in the doc.
OUTPUT_OPTIONS = {"--out": 1, "--plot": 1, "--doc": 1, "--quiet": 0}


def scenario_options(argv: list[str]) -> list[str]:
    """``argv`` without the output options."""
    out: list[str] = []
    skip = 0
    for arg in argv:
        name = arg.split("=", 1)[0]
        if skip:
            skip -= 1
        elif name in OUTPUT_OPTIONS:
            skip = OUTPUT_OPTIONS[name] if "=" not in arg else 0
        else:
            out.append(arg)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="bench/online.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    online.add_options(parser, shared=True)
    parser.add_argument("--doc", type=Path, default=DOC, help="markdown to update")
    parser.add_argument(
        "--no-doc", action="store_true", help="do not touch docs/ (JSON and plot only if asked)"
    )
    argv = sys.argv[1:]
    args = parser.parse_args(argv)
    if not args.no_doc and args.plot is None:
        args.plot = PLOT
    if args.out is None:
        args.out = WORK / "online.json"
    console = Console()
    protocol = online.protocol_of(args)
    ratings = online.ratings_of(args)

    instance = Instance("online")
    try:
        for component in ("api", "collector", "trainer"):
            instance.start(component)
        instance.wait_healthy(instance.api, instance.collector)
        log(f"recsys at {instance.api} / {instance.collector}, prefix {instance.prefix}")
        target = online.Target("recsys", instance.api, instance.collector)
        result = online.compare(
            ratings,
            protocol,
            target,
            baseline=not args.no_baseline,
            progress=not args.quiet,
            console=console,
            repeats=args.repeats,
        )
        model = served_model(instance.api)
    finally:
        instance.close()

    console.print(online.table(result))
    log(f"recsys served at the end: {model}")
    online.write_outputs(result, args, console)
    print(json.dumps(result.ratios(), indent=2))
    if not args.no_doc:
        command = " ".join(["bench/online.py", *scenario_options(argv)])
        section = online.markdown(
            result,
            command,
            online.relative_image(args.plot, args.doc),
            commit(),
            note=f"Model served by recsys at the end of its run: {model}.",
        )
        text = args.doc.read_text() if args.doc.exists() else ""
        args.doc.write_text(online.with_online_section(text, section))
        log(f"wrote the online section of {args.doc}")
    return 1 if result.errors() else 0


if __name__ == "__main__":
    raise SystemExit(main())
