"""The ``recsys`` command: one entry point for every process and tool."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable

from services.common.logsetup import configure_logging
from services.common.settings import ConfigurationError, get_settings

# Seconds a thread may hold the GIL while another waits for it (Python's default: 0.005).
SWITCH_INTERVAL = 0.0005


def _single_threaded_blas() -> None:
    """One BLAS thread for the api, set before numpy loads (an explicit setting wins).

    The event loop already serves many requests at once; OpenBLAS threads only fight it for
    the cores. Measured on 2 busy cores: the 20k x 64 scoring product took 10 ms with
    OpenBLAS threads and 0.08 ms on one thread (docs/benchmarks.md).
    """
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")


def _built_and_frozen(factory: str) -> Callable[[], object]:
    """The app factory, followed by taking what start-up built (modules, classes, routes,
    the app) out of the garbage collector's walks: it lives as long as the process.
    Unfrozen, every full collection walked ~80,000 such objects: the collector spent 5% of
    its time under wrk in collections that freed next to nothing (429 ms in 8 s)."""
    from uvicorn.importer import import_from_string

    create_app = import_from_string(factory)

    def build() -> object:
        app = create_app()
        gc.collect()
        gc.freeze()
        return app

    return build


def _serve(factory: str, port: int) -> int:
    import uvicorn

    from services.common.http_server import guarded_protocol, raise_descriptor_limit

    settings = get_settings()
    raise_descriptor_limit(settings.http_max_connections)
    # The event loop shares the GIL with worker threads (the api's copy of the item counts is
    # decoded and applied in one: tens of milliseconds of Python every two seconds under
    # load). Each request passes the GIL several times, and at Python's 5 ms switch interval
    # every pass could wait 5 ms: requests during that work took ~30 ms (the one-connection
    # /recs p99). Asking for the GIL back sooner bounds that wait.
    sys.setswitchinterval(SWITCH_INTERVAL)
    uvicorn.run(
        _built_and_frozen(factory),
        factory=True,
        host=settings.host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=False,
        # Keep the process's logging (services.common.logsetup): one format, JSON or text.
        log_config=None,
        http=guarded_protocol(
            settings.http_header_timeout,
            settings.http_max_header_bytes,
            settings.http_max_connections,
        ),
        timeout_keep_alive=settings.http_keep_alive_timeout,  # type: ignore[arg-type]
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="recsys", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="run api, collector and trainer together (local default)")
    commands.add_parser("api", help="serve the api (catalogue, /recs) on RECSYS_API_PORT")
    commands.add_parser("collector", help="serve /interact on RECSYS_COLLECTOR_PORT")
    commands.add_parser("trainer", help="consume the queue and retrain every TRAIN_INTERVAL")
    commands.add_parser("ingest", help="consume the queue into the log and Redis only")
    train = commands.add_parser("train", help="train from the log and publish a model")
    train.add_argument("--once", action="store_true", help="one cycle, then exit (default)")
    rebuild = commands.add_parser(
        "rebuild", help="restore ratings and the model in Redis from the interaction log"
    )
    rebuild.add_argument("--no-train", action="store_true", help="replay ratings only")
    prefetch = commands.add_parser(
        "prefetch", help="rank the next pages of the most recently active users ahead"
    )
    prefetch.add_argument("--users", type=int, default=10_000, help="how many users at most")
    prefetch.add_argument("--budget", type=float, default=600.0, help="seconds at most")
    commands.add_parser(
        "evaluate", help="offline evaluation (see `recsys evaluate --help`)", add_help=False
    )
    commands.add_parser(
        "simulate", help="replay a dataset against a running deployment", add_help=False
    )
    args, rest = parser.parse_known_args(argv)

    if args.command == "evaluate":
        from services.evaluation.harness import main as evaluate

        return int(evaluate(rest))
    if args.command == "simulate":
        from services.evaluation.simulator import main as simulate

        return int(simulate(rest))
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")

    # Files and directories recsys creates (the interaction log, the queue, the embedded
    # Redis's AOF, models) hold users' behaviour: readable by the service's user only.
    # Inherited by the processes it starts (the embedded redis-server among them).
    os.umask(0o077)
    try:
        settings = get_settings()
    except ConfigurationError as error:
        parser.exit(2, f"recsys: {error}\n")
    configure_logging(settings.log_level, component=args.command, fmt=settings.log_format)
    if args.command == "up":
        from services.common.embedded_redis import EmbeddedRedisError
        from services.launcher import up

        try:
            return up()
        except EmbeddedRedisError as error:
            # E.g. a second `recsys up` on the same data directory: say which, no traceback.
            parser.exit(1, f"recsys: {error}\n")
    if args.command != "collector":
        try:
            settings.redis_server_url  # noqa: B018 - fail here, before any server starts
        except ConfigurationError as error:
            parser.error(str(error))
    if args.command == "api":
        _single_threaded_blas()
        return _serve("services.api.main:create_app", settings.api_port)
    if args.command == "collector":
        return _serve("services.collector.main:create_app", settings.collector_port)
    if args.command == "prefetch":
        _single_threaded_blas()
        from services.core.prefetcher import run_prefetch

        run_prefetch(settings, args.users, args.budget)
        return 0

    from services.trainer import worker

    if args.command == "trainer":
        return worker.run_trainer(settings)
    if args.command == "ingest":
        return worker.run_ingest(settings)
    if args.command == "rebuild":
        return worker.run_rebuild(settings, train=not args.no_train)
    return worker.run_train_once(settings)


if __name__ == "__main__":  # python -m services.cli, as the launcher starts components
    sys.exit(main())
