"""``recsys up``: the api, the collector and the trainer as one supervised group.

With ``REDIS_URL`` unset it first starts the embedded Redis (see
:mod:`services.common.embedded_redis`) and hands its URL to the children; with ``AMQP_URL``
unset the children use the SQLite queue in the data directory. Either way the children run
the same code as in production.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from types import FrameType

from services.announce import announce_when_ready
from services.common.embedded_redis import EmbeddedRedis, die_with_parent
from services.common.settings import Settings, get_settings

log = logging.getLogger(__name__)

COMPONENTS = ("api", "collector", "trainer")


def child_environment(settings: Settings, redis_url: str | None) -> dict[str, str]:
    """The children's environment: every backend URL resolved, so they agree on it."""
    env = os.environ.copy()
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    env["AMQP_URL"] = settings.broker_url
    # Children may run elsewhere relative to the data; give them the absolute path.
    env["RECSYS_DATA_DIR"] = str(settings.data_dir.resolve())
    return env


def up(components: tuple[str, ...] = COMPONENTS, settings: Settings | None = None) -> int:
    """Start every component; stop all of them when one dies or on Ctrl-C / SIGTERM."""
    settings = settings or get_settings()
    stopping = False

    def stop(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    embedded: EmbeddedRedis | None = None
    if settings.redis_url is None:
        embedded = EmbeddedRedis(settings.data_dir, appendfsync=settings.embedded_redis_fsync)
        redis_url = embedded.start()
    else:
        redis_url = None
    if settings.amqp_url is None:
        log.info("embedded queue: %s", settings.broker_url)
    env = child_environment(settings, redis_url)
    children = {
        name: subprocess.Popen(
            [sys.executable, "-m", "services.cli", name],
            env=env,
            preexec_fn=die_with_parent,
        )
        for name in components
    }
    for name, child in children.items():
        log.info("started %s (pid %d)", name, child.pid)
    if {"api", "collector"} <= set(components):
        announce_when_ready(settings)
    exit_code = 0
    while not stopping:
        for name, child in children.items():
            code = child.poll()
            if code is not None:
                log.error("%s exited with code %s; stopping the others", name, code)
                exit_code = code or 1
                stopping = True
        if embedded is not None and embedded.poll() is not None:
            log.error("embedded redis exited; stopping the others (see %s)", embedded.log_path)
            exit_code = 1
            stopping = True
        time.sleep(0.2)
    for name, child in children.items():
        if child.poll() is None:
            log.info("stopping %s (pid %d)", name, child.pid)
            child.terminate()
    deadline = time.monotonic() + 15
    for name, child in children.items():
        try:
            code = child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s (pid %d) did not stop within 15 s; killing it", name, child.pid)
            child.kill()
            code = child.wait()
        log.info("stopped %s (exit code %s)", name, code)
    # Last, so the trainer's final writes still reach it.
    if embedded is not None:
        embedded.stop()
        log.info("stopped embedded redis")
    return exit_code
