"""Shared benchmark plumbing: processes, wrk, memory, statistics. Loopback only."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
LUA = BENCH / "lua"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
WORK = Path(os.environ.get("BENCH_WORKDIR", "/tmp/recsys-bench"))


def log(message: str) -> None:
    """Progress for long runs (benchmarks may print; the services log)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_wrk() -> str:
    """wrk from Debian; installed with apt-get when missing (we run as root)."""
    found = shutil.which("wrk")
    if found:
        return found
    log("wrk not found: apt-get install -y wrk")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=300)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env, timeout=300)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk could not be installed")
    return found


def rss_bytes(pid: int) -> int:
    """Resident set size of a live process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def pct(values: Sequence[float], q: float) -> float:
    """Percentile ``q`` in [0, 100] by linear interpolation."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


@dataclass
class Instance:
    """One isolated recsys instance (own key prefix, queue, data dir, ports)."""

    name: str
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        tag = f"{self.name}-{uuid.uuid4().hex[:6]}"
        self.prefix = f"bench:{tag}:"
        self.queue = f"bench_{tag}"
        self.workdir = WORK / tag
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ports = {"api": free_port(), "collector": free_port(), "metrics": free_port()}

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    @property
    def collector(self) -> str:
        return f"http://127.0.0.1:{self.ports['collector']}"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "REDIS_URL": REDIS_URL,
            "AMQP_URL": AMQP_URL,
            "RECSYS_KEY_PREFIX": self.prefix,
            "RECSYS_QUEUE": self.queue,
            "RECSYS_ROUTING_KEY": self.queue,
            "RECSYS_EXCHANGE": f"{self.queue}.x",
            "RECSYS_DATA_DIR": str(self.data_dir),
            "RECSYS_API_PORT": str(self.ports["api"]),
            "RECSYS_COLLECTOR_PORT": str(self.ports["collector"]),
            "RECSYS_METRICS_PORT": str(self.ports["metrics"]),
            # No probe ports: nothing probes a benchmark, and fixed ports would collide.
            "RECSYS_API_HEALTH_PORT": "0",
            "RECSYS_COLLECTOR_HEALTH_PORT": "0",
            "RECSYS_LOG_LEVEL": "WARNING",
            **self.extra_env,
        }

    def start(self, component: str) -> subprocess.Popen[bytes]:
        out = open(self.workdir / f"{component}.log", "ab")  # noqa: SIM115 - child owns it
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", component],
            env=self.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        self.processes[component] = process
        return process

    def wait_healthy(self, *urls: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for url in urls:
            while True:
                try:
                    if httpx.get(f"{url}/healthcheck", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url} not healthy; logs in {self.workdir}")
                time.sleep(0.2)

    def stop(self, component: str) -> None:
        process = self.processes.pop(component, None)
        if process is None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def close(self) -> None:
        for component in list(self.processes):
            self.stop(component)
        self.wipe()

    def wipe(self) -> None:
        """Delete this instance's keys and queue (bounded: SCAN in batches)."""
        import pika
        from redis import Redis

        redis = Redis.from_url(REDIS_URL)
        batch: list[bytes] = []
        for key in redis.scan_iter(match=f"{self.prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                redis.unlink(*batch)
                batch = []
        if batch:
            redis.unlink(*batch)
        redis.close()
        try:
            connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
            channel = connection.channel()
            channel.queue_delete(self.queue)
            channel.exchange_delete(f"{self.queue}.x")
            connection.close()
        except Exception as error:  # the broker may be gone; nothing to clean then
            log(f"queue cleanup of {self.queue} failed: {error!r}")
        shutil.rmtree(self.workdir, ignore_errors=True)


class Hello:
    """The floor: FastAPI + uvicorn hello endpoint, served exactly like the services."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Hello:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.hello", str(self.port)],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/hello", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("hello server did not start")

    def __exit__(self, *_: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


@dataclass
class WrkResult:
    requests: int
    ok: int
    non_2xx: int
    socket_errors: int
    seconds: float
    rps: float
    ok_rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    ids: list[str] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "ids"}


def wrk(
    url: str,
    script: str,
    *,
    seconds: float,
    connections: int = 50,
    threads: int = 2,
    env: dict[str, str] | None = None,
) -> WrkResult:
    """Run wrk with a Lua script from bench/lua; the script's done() prints one JSON line."""
    binary = ensure_wrk()
    with_env = {**os.environ, **(env or {})}
    ids_file = WORK / f"wrk-ids-{uuid.uuid4().hex[:8]}.txt"
    with_env["BENCH_IDS_FILE"] = str(ids_file)
    with_env["BENCH_LUA_DIR"] = str(LUA)
    completed = subprocess.run(
        [
            binary,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "5s",
            "-s",
            str(LUA / script),
            url,
        ],
        capture_output=True,
        text=True,
        env=with_env,
        timeout=seconds + 60,
        check=False,
    )
    line = next((ln for ln in reversed(completed.stdout.splitlines()) if ln.startswith("{")), None)
    if completed.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed: {completed.stdout}\n{completed.stderr}")
    data = json.loads(line)
    ids: list[str] = []
    if ids_file.exists():
        ids = [x for x in ids_file.read_text().split() if x]
        ids_file.unlink()
    duration = data["duration_us"] / 1e6
    return WrkResult(
        requests=data["requests"],
        ok=data["ok"],
        non_2xx=data["non_2xx"],
        socket_errors=data["socket_errors"],
        seconds=duration,
        rps=data["requests"] / duration,
        ok_rps=data["ok"] / duration,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        ids=ids,
    )


def interleaved(
    rounds: int, runs: dict[str, Any], *, pause: float = 1.0
) -> dict[str, list[WrkResult]]:
    """Alternate the named runs round by round (A B A B ...), so drift hits both alike."""
    results: dict[str, list[WrkResult]] = {name: [] for name in runs}
    for round_no in range(rounds):
        order = list(runs) if round_no % 2 == 0 else list(reversed(runs))
        for name in order:
            result = runs[name]()
            results[name].append(result)
            log(
                f"  round {round_no + 1}/{rounds} {name}: {result.ok_rps:,.0f} ok req/s, "
                f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, "
                f"non-2xx {result.non_2xx}, socket errors {result.socket_errors}"
            )
            time.sleep(pause)
    return results


def summarise(results: list[WrkResult]) -> dict[str, Any]:
    """Median of rounds for every figure, plus the rounds themselves."""
    return {
        "ok_rps": median(r.ok_rps for r in results),
        "p50_ms": median(r.p50_ms for r in results),
        "p90_ms": median(r.p90_ms for r in results),
        "p99_ms": median(r.p99_ms for r in results),
        "requests": sum(r.requests for r in results),
        "ok": sum(r.ok for r in results),
        "non_2xx": sum(r.non_2xx for r in results),
        "socket_errors": sum(r.socket_errors for r in results),
        "rounds": [r.public() for r in results],
    }


def paired_ratio(a: list[WrkResult], b: list[WrkResult]) -> dict[str, float]:
    """Per-round ratio a/b of ok req/s (rounds are adjacent in time), with its spread."""
    ratios = [x.ok_rps / y.ok_rps for x, y in zip(a, b, strict=True) if y.ok_rps > 0]
    return {"median": median(ratios), "min": min(ratios), "max": max(ratios)}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def listening_pid(port: int) -> int | None:
    """The process listening on a loopback TCP port (the broker, Redis), via ss."""
    try:
        out = subprocess.run(
            ["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    marker = "pid="
    for line in out.splitlines():
        if marker in line:
            return int(line.split(marker, 1)[1].split(",", 1)[0])
    return None


class CpuMeter:
    """CPU seconds spent by named processes (and by our children, e.g. wrk) over a span."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = {name: pid for name, pid in pids.items() if pid}
        self.totals: dict[str, float] = {name: 0.0 for name in [*self.pids, "wrk"]}
        self._start: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        import resource

        now: dict[str, float] = {}
        for name, pid in self.pids.items():
            try:
                now[name] = cpu_seconds(pid)
            except OSError:
                now[name] = self._start.get(name, 0.0)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        now["wrk"] = usage.ru_utime + usage.ru_stime
        return now

    def __enter__(self) -> CpuMeter:
        self._start = self._read()
        return self

    def __exit__(self, *_: object) -> None:
        end = self._read()
        for name, value in end.items():
            self.totals[name] += value - self._start.get(name, value)
