"""Secrets stay secret: the admin token and the Redis/AMQP passwords never reach logs or
responses, even at DEBUG level and when connections fail."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from services.common.settings import Settings
from tests.conftest import free_port
from tests.e2e.processes import Deployment

pytestmark = pytest.mark.e2e

TOKEN = "adm1n-T0ken-never-logged"
WRONG = "wr0ng-T0ken-never-logged"
PASSWORD = "s3cret-Passw0rd-never-logged"


def test_admin_token_is_never_logged(settings: Settings, tmp_path: Path) -> None:
    deployment = Deployment(
        settings,
        tmp_path,
        extra_env={"RECSYS_ADMIN_TOKEN": TOKEN, "RECSYS_LOG_LEVEL": "DEBUG"},
    )
    try:
        deployment.start("api")
        deployment.start("collector")
        deployment.wait_healthy()
        api = httpx.Client(base_url=deployment.api, timeout=10)
        assert api.post("/add_items", json={"item_ids": ["a"]}).status_code == 401
        wrong = api.post("/add_items", json={"item_ids": ["a"]}, headers={"X-Admin-Token": WRONG})
        assert wrong.status_code == 401 and WRONG not in wrong.text
        right = api.post("/add_items", json={"item_ids": ["a"]}, headers={"X-Admin-Token": TOKEN})
        assert right.status_code == 200 and TOKEN not in right.text
        invalid = api.post("/add_items", json={"bad": 1}, headers={"X-Admin-Token": TOKEN})
        assert invalid.status_code == 422 and TOKEN not in invalid.text
        assert api.post("/cleanup", headers={"X-Admin-Token": TOKEN}).status_code == 200
        for url in (deployment.api, deployment.collector):
            assert TOKEN not in httpx.get(f"{url}/metrics").text
    finally:
        deployment.stop_all()
    logs = "".join(p.read_text() for p in tmp_path.glob("*.log"))
    assert "DEBUG" in logs, "the processes did not log at DEBUG; the check would be empty"
    assert TOKEN not in logs and WRONG not in logs


def test_passwords_are_never_logged_or_returned(settings: Settings, tmp_path: Path) -> None:
    """Refused connections (nothing listening) and a refused login at the real broker."""
    for case, amqp_url, redis_url in (
        (
            "down",
            f"amqp://guest:{PASSWORD}@127.0.0.1:{free_port()}/%2F",
            f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0",
        ),
        (
            "refused login",
            settings.amqp_url.replace("guest:guest", f"guest:{PASSWORD}"),  # type: ignore[union-attr]
            str(settings.redis_url).replace("redis://", f"redis://default:{PASSWORD}@"),
        ),
    ):
        workdir = tmp_path / case.replace(" ", "-")
        workdir.mkdir()
        deployment = Deployment(
            settings.model_copy(update={"amqp_url": amqp_url, "redis_url": redis_url}),
            workdir,
            extra_env={"RECSYS_LOG_LEVEL": "DEBUG", "RECSYS_PUBLISH_TIMEOUT": "1"},
        )
        bodies = []
        try:
            for name in ("api", "collector", "trainer"):
                deployment.start(name)
            deadline = time.monotonic() + 30
            for url in (deployment.api, deployment.collector):
                while True:
                    try:
                        response = httpx.get(f"{url}/healthcheck", timeout=10)
                        break
                    except httpx.TransportError:
                        assert time.monotonic() < deadline, deployment.logs()
                        time.sleep(0.2)
                assert response.status_code == 503, response.text
                bodies.append(response.text)
            event = {"user_id": "u", "item_ids": ["a"], "actions": ["like"]}
            refused = httpx.post(f"{deployment.collector}/interact", json=event, timeout=10)
            assert refused.status_code == 503
            bodies.append(refused.text)
            bodies.append(httpx.get(f"{deployment.api}/recs/u", timeout=10).text)
            time.sleep(2)  # the trainer retries and logs its failures meanwhile
        finally:
            deployment.stop_all()
        logs = "".join(p.read_text() for p in workdir.glob("*.log"))
        assert "unavailable" in "".join(bodies)
        assert "trainer" in {p.stem for p in workdir.glob("*.log")}
        assert PASSWORD not in logs, f"{case}: a password in the logs"
        assert all(PASSWORD not in body for body in bodies), f"{case}: a password in a response"
