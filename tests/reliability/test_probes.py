"""A busy pod is not a dead pod: the probes answer promptly under a flood, and still truly.

Kubernetes gives a probe ``timeoutSeconds`` (1 s by default, 3 s in our charts) and acts on
a few failures in a row: a readiness failure takes the pod out of its Service, a liveness
failure restarts it. Under several hundred concurrent ``/recs`` the api answered
``/healthcheck`` on its serving port in 73-617 ms at the median and up to 0.4-3.1 s
(issue 15, and the serving-port figures this test prints), and now and then with 503
"redis: MaxConnectionsError" because the flood held the serving Redis pool: a pod would
have been drained or killed for being busy, moving its load to the others. The probes now
have a port of their own (services/common/health_server.py); this test floods the serving
port and times the probes, sent as the kubelet sends them, on the probe port.
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from services.common.settings import Settings
from tests.e2e.processes import Deployment, wait_until
from tests.reliability.servers import PrivateRedis

pytestmark = [pytest.mark.e2e, pytest.mark.backends("real", "embedded")]

CONNECTIONS = 600  # concurrent requests: each connection sends one after the other
FLOOD_SECONDS = 12.0
PROBE_EVERY = 0.1
ITEMS = 2000
# What the kubelet would see, with room for a loaded 2-core machine (load averages 5-15
# from other engineers' runs): the typical probe answered at once (measured 1-21 ms at the
# median), nine in ten well within the 1 s default timeout (measured 8-138 ms), and not one
# past it (measured at most 437 ms). The serving port's /healthcheck, which the probes
# asked before, took 88-617 ms at the median, so the old probes fail the first bound (and
# the second in most runs: 196 ms to 2.3 s at the 90th percentile).
MEDIAN = 0.05
P90 = 0.25
SLOWEST = 1.0


def probe(port: int, path: str) -> tuple[int, float, bytes]:
    """One probe as the kubelet sends it: a new connection, one request, closed."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: recsys\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    elapsed = time.monotonic() - started
    return int(answer.split(b" ", 2)[1]), elapsed, answer.partition(b"\r\n\r\n")[2]


def p90(seconds: list[float]) -> float:
    return sorted(seconds)[int(len(seconds) * 0.9)]


def summary(seconds: list[float]) -> str:
    return (
        f"p50 {statistics.median(seconds) * 1000:.0f}, p90 {p90(seconds) * 1000:.0f}, "
        f"max {max(seconds) * 1000:.0f} ms ({len(seconds)})"
    )


def probe_until(port: int, path: str, deadline: float, into: list[float]) -> None:
    """For comparison: the serving port's own /healthcheck, timed from a thread of its own
    so that its slow answers do not thin out the probes being asserted on."""
    while time.monotonic() < deadline:
        into.append(probe(port, path)[1])
        time.sleep(PROBE_EVERY)


@pytest.mark.parametrize("service", ["api", "collector"])
def test_probes_answer_promptly_under_a_flood(
    settings: Settings, tmp_path: Path, service: str
) -> None:
    # No retraining on the flood's events meanwhile: in embedded mode the trainer shares
    # the machine, and its minutes of CPU are not what this test is about.
    deployment = Deployment(settings, tmp_path, extra_env={"TRAIN_INTERVAL": "3600"})
    deployment.start_all()
    try:
        items = [f"i{n}" for n in range(ITEMS)]
        httpx.post(f"{deployment.api}/add_items", json={"item_ids": items}).raise_for_status()
        # The first /recs builds the serving state: not what is measured here.
        httpx.get(f"{deployment.api}/recs/warm-up", timeout=30).raise_for_status()
        if service == "api":
            target, port, probe_port = "recs", deployment.api_port, deployment.api_health_port
        else:
            target, port = "interact", deployment.collector_port
            probe_port = deployment.collector_health_port

        command = [sys.executable, "-m", "tests.reliability.flood", target, "127.0.0.1"]
        flood = subprocess.Popen(
            [*command, str(port), str(CONNECTIONS), str(FLOOD_SECONDS)], stdout=subprocess.PIPE
        )
        probes: dict[str, list[float]] = {"/healthcheck": [], "/livez": [], "serving": []}
        failed: list[tuple[str, int, bytes]] = []
        try:
            time.sleep(2.0)  # every connection open and asking
            deadline = time.monotonic() + FLOOD_SECONDS - 4.0
            serving = threading.Thread(
                target=probe_until, args=(port, "/healthcheck", deadline, probes["serving"])
            )
            serving.start()
            while time.monotonic() < deadline:
                for path in ("/healthcheck", "/livez"):
                    status, seconds, body = probe(probe_port, path)
                    probes[path].append(seconds)
                    if status != 200:
                        failed.append((path, status, body))
                time.sleep(PROBE_EVERY)
            serving.join(30)
            out, _ = flood.communicate(timeout=60)
        finally:
            if flood.poll() is None:
                flood.kill()
                flood.wait()
        load = json.loads(out)
        print(
            f"[probes under a flood, {service} {'embedded' if deployment.embedded else 'real'}] "
            f"{CONNECTIONS} connections of {target}, most in flight {load['most_in_flight']}, "
            f"answers {load['statuses']} {load['errors']}, failures {load['failures']}; "
            f"probe port /healthcheck {summary(probes['/healthcheck'])}, "
            f"/livez {summary(probes['/livez'])}; "
            f"serving port /healthcheck {summary(probes['serving'])}"
        )
        assert load["most_in_flight"] >= CONNECTIONS // 2, f"not much of a flood: {load}"
        # Below the request limits (256 running, 512 waiting) the flood is served; only an
        # overload refusal may answer 503 on a loaded machine, never a Redis pool that ran
        # out ("redis: Too many connections" before the pool was sized to the limit).
        refusals = [body for body in load["errors"] if "overloaded" not in body]
        assert not refusals, f"the flood was refused: {load['errors']}"
        assert not failed, f"a busy {service} was reported unwell: {failed[:3]}"
        for path in ("/healthcheck", "/livez"):
            timings = probes[path]
            assert statistics.median(timings) < MEDIAN, f"{path}: {summary(timings)}"
            assert p90(timings) < P90, f"{path}: {summary(timings)}"
            assert max(timings) < SLOWEST, f"{path}: {summary(timings)}"
    finally:
        deployment.stop_all()


def status_of(url: str) -> int:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError:
        return 0


def seconds_until(url: str, status: int, within: float) -> float:
    """How long until ``url`` answers ``status``; fails after ``within`` seconds."""
    started = time.monotonic()
    while status_of(url) != status:
        assert time.monotonic() - started < within, f"{url} not {status} within {within}s"
        time.sleep(0.05)
    return time.monotonic() - started


@pytest.mark.backends("real")  # a Redis of its own to stop; the check is the same embedded
def test_the_probe_port_still_sees_redis_hang_and_go(settings: Settings, tmp_path: Path) -> None:
    """Answered from a check refreshed every second on connections of its own, readiness
    still follows Redis: 503 within the refresh period plus the Redis timeout (hung) or at
    once (gone), 200 again once it is back; liveness stays 200 throughout (no restarts)."""
    redis_server = PrivateRedis(tmp_path / "redis")
    redis_server.start()
    deployment = Deployment(
        settings.model_copy(update={"redis_url": redis_server.url}),
        tmp_path,
        extra_env={"RECSYS_REDIS_TIMEOUT": "1", "RECSYS_HEALTH_PROBE_REFRESH_SECONDS": "1"},
    )
    probes = f"http://127.0.0.1:{deployment.api_health_port}"
    ready, live = f"{probes}/healthcheck", f"{probes}/livez"
    try:
        deployment.start("api")
        wait_until(lambda: status_of(ready) == 200, 30, deployment.logs)

        redis_server.pause()  # hung: the port open, nothing answers
        hung = seconds_until(ready, 503, within=1 + 1 + 3)
        assert "redis" in httpx.get(ready, timeout=5).json()["down"]
        assert status_of(live) == 200, "a Redis outage must not restart the api"
        redis_server.resume()
        back = seconds_until(ready, 200, within=1 + 3)

        redis_server.stop()  # gone: connections refused
        gone = seconds_until(ready, 503, within=1 + 3)
        assert status_of(live) == 200
        print(
            f"[probes, real] probe port /healthcheck: 503 {hung:.1f}s after Redis hung, "
            f"200 {back:.1f}s after it came back, 503 {gone:.1f}s after it stopped"
        )
    finally:
        deployment.stop_all()
        if redis_server.process is not None:
            redis_server.resume()
        redis_server.stop()
