"""`recsys up` on a disk that fills up: it degrades, says why, and recovers by itself.

The whole data directory (embedded Redis's AOF, the SQLite queue, the interaction log) is
on a real tmpfs. Filling it makes the embedded Redis exit on its next AOF write (it cannot
go on under ``appendfsync always``); before issue #7 the launcher then stopped every
component and the service stayed down after the space came back.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from services.common.settings import Settings
from tests.e2e.processes import Deployment, wait_until
from tests.tmpfs import fill, tiny_tmpfs

pytestmark = [pytest.mark.e2e, pytest.mark.backends("embedded")]

DISK = 48 * 1024 * 1024
ITEMS = [f"item-{n}" for n in range(40)]


def post_event(collector: str, user: str, statuses: Counter[int]) -> str | None:
    """One like; the event id when accepted (200)."""
    body = {"user_id": user, "item_ids": [ITEMS[hash(user) % len(ITEMS)]], "actions": ["like"]}
    try:
        response = httpx.post(f"{collector}/interact", json=body, timeout=10)
    except httpx.TransportError:
        statuses[0] += 1
        return None
    statuses[response.status_code] += 1
    return str(response.json()["event_id"]) if response.status_code == 200 else None


def health(api: str) -> tuple[int, dict[str, object]]:
    try:
        response = httpx.get(f"{api}/healthcheck", timeout=5)
    except httpx.TransportError:
        return 0, {}
    return response.status_code, response.json()


def logged_ids(settings: Settings) -> Counter[str]:
    if not settings.log_path.exists():
        return Counter()
    data = settings.log_path.read_bytes()
    return Counter(json.loads(line)["event_id"] for line in data.splitlines() if line.strip())


def test_full_disk_degrades_then_recovers_by_itself_losing_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    with tiny_tmpfs(tmp_path / "disk", DISK) as disk:
        settings = settings.model_copy(update={"data_dir": disk / "data"})
        deployment = Deployment(
            settings,
            tmp_path,
            extra_env={
                "RECSYS_RESTART_BACKOFF_INITIAL": "0.2",
                "RECSYS_RESTART_BACKOFF_MAX": "2",
                "RECSYS_RESTART_RESET_AFTER": "5",
            },
        )
        deployment.start_all()
        api, collector = deployment.api, deployment.collector
        launcher_log = tmp_path / "up.log"
        statuses: Counter[int] = Counter()
        accepted: set[str] = set()
        try:
            httpx.post(f"{api}/add_items", json={"item_ids": ITEMS}).raise_for_status()
            for n in range(20):
                accepted.add(post_event(collector, f"before-{n}", statuses) or "")
            assert "" not in accepted, statuses

            fill(disk / "filler")
            filled = time.monotonic()
            # Writes go on: /recs records impressions in Redis, whose AOF write now fails.
            n = 0
            unhealthy: Counter[int] = Counter()
            while "embedded redis exited" not in launcher_log.read_text() or not unhealthy:
                assert time.monotonic() - filled < 60, deployment.logs()
                event_id = post_event(collector, f"full-{n}", statuses)
                if event_id:
                    accepted.add(event_id)
                httpx.get(f"{api}/recs/full-{n}", timeout=10)
                status, body = health(api)
                if status != 200 or body.get("status") != "ok":
                    unhealthy[status] += 1
                n += 1
            degraded_after = time.monotonic() - filled
            assert deployment.processes["up"].poll() is None, "recsys up gave up"
            exits = [line for line in launcher_log.read_text().splitlines() if "exited" in line]
            assert any("filesystem is full" in line for line in exits), exits

            # Space comes back; nobody touches the service.
            time.sleep(3)
            (disk / "filler").unlink()
            freed = time.monotonic()
            wait_until(lambda: health(api)[0] == 200, 60, deployment.logs)
            recovered_after = time.monotonic() - freed
            notes = health(api)[1].get("notes", {})
            assert isinstance(notes, dict)
            assert "embedded redis" in str(notes.get("supervisor")), health(api)
            wait_until(lambda: health(deployment.collector)[0] == 200, 30, deployment.logs)

            for n in range(20):
                accepted.add(post_event(collector, f"after-{n}", statuses) or "")
            assert "" not in accepted, statuses
            recs = httpx.get(f"{api}/recs/after-0", timeout=10)
            assert recs.status_code == 200 and len(recs.json()["item_ids"]) == 10

            wait_until(
                lambda: accepted <= set(logged_ids(settings)),
                60,
                lambda: (
                    f"{len(accepted - set(logged_ids(settings)))} accepted events "
                    f"missing from the log\n{deployment.logs()}"
                ),
            )
            counts = logged_ids(settings)
            assert max(counts.values()) == 1, "an event stored twice"
            restarts = launcher_log.read_text().count("restarted (restart")
            print(
                f"[disk full, recsys up] accepted={len(accepted)} in_log={len(counts)} "
                f"lost={len(accepted - set(counts))} statuses={dict(statuses)} "
                f"degraded {degraded_after:.1f}s after the fill (healthcheck {dict(unhealthy)}), "
                f"healthy "
                f"{recovered_after:.1f}s after space came back, {restarts} restarts"
            )
            lines = launcher_log.read_text().splitlines()
            print("\n".join(line for line in lines if "services.supervision" in line))
            # The note goes once everything has been up RECSYS_RESTART_RESET_AFTER.
            wait_until(
                lambda: "supervisor" not in health(api)[1].get("notes", {}),  # type: ignore[operator]
                30,
                "the supervisor's note stayed",
            )
        finally:
            deployment.stop_all()
