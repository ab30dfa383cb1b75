"""``recsys up``: the api, the collector and the trainer as one supervised group (a process
that dies is restarted with backoff, see :mod:`services.supervision`).

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
from collections.abc import Callable
from types import FrameType

from redis import Redis

from services.announce import announce_when_ready
from services.common.embedded_redis import EmbeddedRedis, die_with_parent
from services.common.keys import Keys
from services.common.settings import Settings, get_settings
from services.supervision import Backoff, Supervised, Supervisor, log_size

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
    """Start every component and keep it running (a dead one is restarted with backoff,
    :mod:`services.supervision`) until Ctrl-C / SIGTERM; then stop all of them."""
    settings = settings or get_settings()
    stopping = False

    def stop(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    def backoff() -> Backoff:
        return Backoff(
            settings.restart_backoff_initial,
            settings.restart_backoff_max,
            settings.restart_reset_after,
        )

    supervised: list[Supervised] = []
    embedded: EmbeddedRedis | None = None
    if settings.redis_url is None:
        embedded = EmbeddedRedis(settings.data_dir, appendfsync=settings.embedded_redis_fsync)
        redis_url = embedded.start()
        server = embedded

        def restart_redis() -> None:
            server.restart()

        supervised.append(
            Supervised(
                "embedded redis",
                start=restart_redis,
                poll=embedded.poll,
                backoff=backoff(),
                data_dir=settings.data_dir,
                log_path=embedded.log_path,
                log_offset=log_size(embedded.log_path),
            )
        )
    else:
        redis_url = None
    if settings.amqp_url is None:
        log.info("embedded queue: %s", settings.broker_url)
    env = child_environment(settings, redis_url)
    children: dict[str, subprocess.Popen[bytes]] = {}

    def starter(name: str) -> Callable[[], None]:
        def start() -> None:
            children[name] = subprocess.Popen(
                [sys.executable, "-m", "services.cli", name],
                env=env,
                preexec_fn=die_with_parent,
            )
            log.info("started %s (pid %d)", name, children[name].pid)

        return start

    for name in components:
        starter(name)()
        supervised.append(
            Supervised(
                name,
                start=starter(name),
                poll=lambda name=name: children[name].poll(),  # type: ignore[misc]
                backoff=backoff(),
                data_dir=settings.data_dir,
            )
        )
    if {"api", "collector"} <= set(components):
        announce_when_ready(settings)
    notes = StatusNote(redis_url or settings.redis_url, settings.key_prefix)
    supervisor = Supervisor(supervised, notes.write)
    try:
        while not stopping:
            supervisor.check()
            time.sleep(0.2)
    finally:
        notes.close()
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
    return 0


class StatusNote:
    """The supervisor's note in the instance's status hash, shown by /healthcheck."""

    FIELD = "supervisor"

    def __init__(self, redis_url: str | None, key_prefix: str) -> None:
        # Short timeouts: Redis may be the process that is down.
        self.redis = (
            Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
            if redis_url
            else None
        )
        self.key = Keys(key_prefix).status

    def write(self, note: str | None) -> None:
        if self.redis is None:
            return
        if note is None:
            self.redis.hdel(self.key, self.FIELD)
        else:
            self.redis.hset(self.key, self.FIELD, note)

    def close(self) -> None:
        if self.redis is not None:
            self.redis.close()
