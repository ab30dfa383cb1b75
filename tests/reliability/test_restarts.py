"""`recsys up` brings back a component that died, on either backend, and says so."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import psutil
import pytest

from services.common.settings import Settings
from tests.e2e.processes import Deployment, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.backends("real", "embedded")]


def child(deployment: Deployment, name: str) -> psutil.Process:
    up = psutil.Process(deployment.processes["up"].pid)
    [process] = [p for p in up.children() if p.cmdline()[-1:] == [name]]
    return process


def notes(url: str) -> dict[str, str]:
    try:
        body = httpx.get(f"{url}/healthcheck", timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return {}
    found: dict[str, str] = body.get("notes", {})
    return found


def test_a_killed_component_comes_back_and_the_cause_is_shown(
    settings: Settings, tmp_path: Path
) -> None:
    deployment = Deployment(
        settings,
        tmp_path,
        extra_env={"RECSYS_RESTART_BACKOFF_INITIAL": "0.5", "RECSYS_RESTART_RESET_AFTER": "15"},
    )
    # `recsys up` on either backend: with REDIS_URL and AMQP_URL set it supervises the same
    # three components against the real servers.
    deployment.start("up")
    try:
        deployment.wait_healthy()
        for name, url in (("collector", deployment.collector), ("api", deployment.api)):
            victim = child(deployment, name)
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            killed = time.monotonic()
            wait_until(lambda url=url: healthy(url), 30, deployment.logs)
            back_after = time.monotonic() - killed
            assert child(deployment, name).pid != victim.pid
            note = notes(deployment.api).get("supervisor", "")
            assert f"{name} restarted 1x (last exit: killed by SIGKILL)" in note, note
            print(f"[restart {name}] serving again {back_after:.1f}s after kill -9")
        log = (tmp_path / "up.log").read_text()
        assert "collector exited (killed by SIGKILL)" in log
        # Up for RECSYS_RESTART_RESET_AFTER: the note goes.
        wait_until(lambda: "supervisor" not in notes(deployment.api), 60, deployment.logs)
        assert deployment.processes["up"].poll() is None
    finally:
        deployment.stop_all()


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthcheck", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
