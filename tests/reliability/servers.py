"""Throwaway Redis and RabbitMQ servers for tests that stop or kill them.

The shared servers on 6379/5672 serve every test and every engineer on the machine, so the
fault tests never touch them: they start private ones on free ports under a temp directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import free_port

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout}s")


@dataclass
class PrivateRedis:
    """A redis-server of our own; ``appendonly`` decides whether a kill loses its data."""

    workdir: Path
    appendonly: bool = False
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "redis.log", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--appendfsync",
                "always",
                "--dir",
                str(self.workdir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        _wait(lambda: _port_open(self.port), 10, f"redis-server on {self.port} did not start")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None:
            return
        self.process.send_signal(sig)
        self.process.wait(20)
        self.process = None

    def pause(self) -> None:
        """SIGSTOP: the port stays open but nothing answers (a hung dependency)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


class RabbitUnavailableError(Exception):
    """A private RabbitMQ node could not be started here (the reason is the message)."""


@dataclass
class PrivateRabbit:
    """A RabbitMQ node of our own (own node name, ports, mnesia and log dirs, no plugins)."""

    workdir: Path
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    node: str = field(default_factory=lambda: f"recsys-test-{uuid.uuid4().hex[:8]}@localhost")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def _env(self) -> dict[str, str]:
        w = self.workdir
        return {
            **os.environ,
            "HOME": str(w),  # the CLI and the node share the Erlang cookie created there
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(w / "mnesia"),
            "RABBITMQ_LOG_BASE": str(w / "log"),
            "RABBITMQ_PID_FILE": str(w / "pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(w / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(w / "rabbitmq"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(w / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(w / "rabbitmq-env.conf"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def _ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.node, *args],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, timeout: float = 60) -> None:
        server = RABBITMQ_BIN / "rabbitmq-server"
        if not server.exists() or shutil.which("erl") is None:
            raise RabbitUnavailableError(f"{server} or erl not installed")
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "enabled_plugins").write_text("[].\n")
        (self.workdir / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
        )
        (self.workdir / "rabbitmq-env.conf").touch()
        started = subprocess.run(
            [str(server), "-detached"],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if started.returncode != 0:
            raise RabbitUnavailableError(f"rabbitmq-server -detached: {started.stderr[-500:]}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _port_open(self.port) and self._ctl("await_startup", timeout=30).returncode == 0:
                return
            time.sleep(0.5)
        raise RabbitUnavailableError(f"node {self.node} did not start; logs in {self.workdir}")

    def stop(self) -> None:
        """Clean stop: the node flushes and exits."""
        self._ctl("stop", timeout=60)
        _wait(lambda: not _port_open(self.port), 30, "rabbitmq did not stop")

    def kill(self) -> None:
        """kill -9 of the Erlang VM: only what the broker fsynced survives."""
        pid = int((self.workdir / "pid").read_text().strip())
        os.kill(pid, signal.SIGKILL)
        _wait(lambda: not _port_open(self.port), 30, "rabbitmq did not die")
        # epmd may still list the node name for a moment; the next start reuses it.
        time.sleep(1)
