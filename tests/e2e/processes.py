"""Start recsys as real processes: components one by one against the real Redis and
RabbitMQ, or (embedded settings: no AMQP_URL) the whole of ``recsys up`` in embedded mode."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from services.common.settings import Settings
from tests.conftest import free_port


@dataclass
class Deployment:
    """The three components of one instance, each a child process with its own log file."""

    settings: Settings
    workdir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.api_port = free_port()
        self.collector_port = free_port()
        self.metrics_port = free_port()
        self.api_health_port = free_port()
        self.collector_health_port = free_port()

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def collector(self) -> str:
        return f"http://127.0.0.1:{self.collector_port}"

    @property
    def embedded(self) -> bool:
        """Embedded mode: `recsys up` starts its own Redis and uses the SQLite queue."""
        return self.settings.amqp_url is None

    def env(self) -> dict[str, str]:
        s = self.settings
        inherited = {
            k: v
            for k, v in os.environ.items()
            if k not in ("REDIS_URL", "AMQP_URL", "RECSYS_REDIS_URL", "RECSYS_AMQP_URL")
        }
        backends = (
            {} if self.embedded else {"REDIS_URL": str(s.redis_url), "AMQP_URL": s.broker_url}
        )
        return {
            **inherited,
            **backends,
            "RECSYS_KEY_PREFIX": s.key_prefix,
            "RECSYS_QUEUE": s.queue,
            "RECSYS_ROUTING_KEY": s.routing_key,
            "RECSYS_DATA_DIR": str(s.data_dir),
            "RECSYS_API_PORT": str(self.api_port),
            "RECSYS_COLLECTOR_PORT": str(self.collector_port),
            "RECSYS_METRICS_PORT": str(self.metrics_port),
            "RECSYS_API_HEALTH_PORT": str(self.api_health_port),
            "RECSYS_COLLECTOR_HEALTH_PORT": str(self.collector_health_port),
            "TRAIN_INTERVAL": "1",
            "RECSYS_LIGHTFM_EPOCHS": "10",
            **self.extra_env,
        }

    def start(self, name: str) -> None:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "services.cli", name],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.processes.pop(name)
        process.send_signal(sig)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def start_all(self) -> None:
        """The three components; in embedded mode the one `recsys up` that runs them."""
        for name in ("up",) if self.embedded else ("api", "collector", "trainer"):
            self.start(name)
        self.wait_healthy()

    def wait_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        for url in (self.api, self.collector):
            while True:
                try:
                    if httpx.get(f"{url}/healthcheck", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"{url} not healthy; logs in {self.workdir}")
                time.sleep(0.2)

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.workdir.glob("*.log"))
        )

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)


def wait_until(
    condition: Callable[[], bool], timeout: float, message: str | Callable[[], str]
) -> None:
    """Poll ``condition``; on timeout fail with ``message`` (a callable is read only then)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message() if callable(message) else message)
        time.sleep(0.1)
