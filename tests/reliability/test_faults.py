"""Restart every component, and the broker and Redis, under a stream of events: nothing lost.

Each test sends uniquely numbered events through the collector while components are killed
(SIGKILL) or stopped (SIGTERM) one at a time, then audits the durable interaction log:
every event answered 200 is in it exactly once, the api answers again and a model retrains
on everything. The counts are printed (run with ``-s``) and recorded in docs/reliability.md.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from redis import Redis

from services.common.keys import Keys
from services.common.settings import Settings
from tests.e2e.processes import Deployment
from tests.reliability.harness import ITEMS, EventStream, audit, logged_numbers, wait_until_drained
from tests.reliability.servers import PrivateRabbit, PrivateRedis, RabbitUnavailableError

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FAST_FAILING = {
    # A dead broker must turn into a quick 503, not a 5 s wait per request.
    "RECSYS_PUBLISH_TIMEOUT": "2",
    "RECSYS_REDIS_TIMEOUT": "1",
    # EASE trains in well under a second here, so "the model retrains" is quick to see.
    "RECSYS_MODEL": "ease",
}


def wait_until(condition: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(message)


def deploy(settings: Settings, workdir: Path) -> Deployment:
    deployment = Deployment(settings, workdir, extra_env=dict(FAST_FAILING))
    deployment.start_all()
    add_catalogue(deployment)
    return deployment


def add_catalogue(deployment: Deployment) -> None:
    response = httpx.post(f"{deployment.api}/add_items", json={"item_ids": ITEMS}, timeout=10)
    assert response.status_code == 200, response.text


def restart(deployment: Deployment, name: str, sig: int) -> None:
    deployment.stop(name, sig)
    time.sleep(0.5)  # traffic meets the dead component for a moment
    deployment.start(name)
    deployment.wait_healthy(timeout=60)


def check_recovered(
    deployment: Deployment, stream: EventStream, scenario: str, *, drain: float = 60
) -> None:
    """The common end of every fault test: audit the log, the api serves, a model retrains."""
    stream.stop()
    log_path = deployment.settings.log_path
    wait_until_drained(log_path, stream.accepted, timeout=drain)
    result = audit(stream, log_path)
    print(result.line(scenario))
    assert result.accepted > 200, f"too few events got through to mean anything: {result}"
    assert not stream.other, f"statuses other than 200/503: {dict(stream.other)}"
    assert not result.lost, f"{len(result.lost)} accepted events lost, e.g. {result.lost[:10]}"
    assert result.duplicates == 0, f"{result.duplicates} duplicated events in the log"

    api = httpx.Client(base_url=deployment.api, timeout=10)
    recs = api.get("/recs/ev-0")
    assert recs.status_code == 200 and len(recs.json()["item_ids"]) == 10, recs.text
    # The model retrains on everything that is logged (one user per event number).
    users = len(logged_numbers(log_path))
    wait_until(
        lambda: api.get("/model").json().get("users", 0) >= users,
        60,
        f"no model trained on all {users} users\n{deployment.logs()}",
    )


@pytest.fixture
def stopper() -> Iterator[list[Callable[[], None]]]:
    """Teardown actions, run in reverse order even when the test fails."""
    actions: list[Callable[[], None]] = []
    yield actions
    for action in reversed(actions):
        try:
            action()
        except Exception as error:  # teardown must reach every action
            print(f"teardown: {error!r}")


def test_component_restarts_lose_nothing(
    settings: Settings, tmp_path: Path, stopper: list[Callable[[], None]]
) -> None:
    """Collector, trainer and api, each killed -9 and stopped cleanly, under load."""
    deployment = deploy(settings, tmp_path)
    stopper.append(deployment.stop_all)
    stream = EventStream(deployment.collector)
    stream.start()
    stopper.append(stream.stop)
    time.sleep(2)
    for name in ("collector", "trainer", "api"):
        for sig in (signal.SIGKILL, signal.SIGTERM):
            restart(deployment, name, sig)
            time.sleep(1.5)
    time.sleep(1)
    check_recovered(deployment, stream, "collector/trainer/api kill -9 and SIGTERM")


def test_redis_loss_then_rebuild_loses_nothing(
    settings: Settings, tmp_path: Path, stopper: list[Callable[[], None]]
) -> None:
    """Redis killed -9 without persistence: everything in it is gone; `recsys rebuild`."""
    redis_server = PrivateRedis(tmp_path / "redis")
    redis_server.start()
    stopper.append(redis_server.stop)
    private = settings.model_copy(update={"redis_url": redis_server.url})
    deployment = deploy(private, tmp_path)
    stopper.append(deployment.stop_all)
    stream = EventStream(deployment.collector)
    stream.start()
    stopper.append(stream.stop)
    time.sleep(3)

    redis_server.stop(signal.SIGKILL)
    time.sleep(2)
    # Redis down: the api says so quickly, the collector keeps accepting (the broker holds).
    started = time.monotonic()
    down = httpx.get(f"{deployment.api}/recs/ev-1", timeout=10)
    assert down.status_code == 503 and "redis" in down.json()["error"]
    assert time.monotonic() - started < 3
    health = httpx.get(f"{deployment.api}/healthcheck", timeout=10)
    assert health.status_code == 503 and "redis" in health.json()["down"]
    redis_server.start()  # empty: no RDB, no AOF

    rebuild = subprocess.run(
        [sys.executable, "-m", "services.cli", "rebuild"],
        env=deployment.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert rebuild.returncode == 0, rebuild.stderr[-3000:]
    add_catalogue(deployment)  # the catalogue is not in the log: the operator re-sends it
    time.sleep(2)
    check_recovered(deployment, stream, "redis kill -9, data lost, recsys rebuild")

    # Every logged user's ratings are back in Redis (replayed or ingested after the loss).
    client = Redis.from_url(redis_server.url)
    keys = Keys(private.key_prefix)
    missing = [
        n for n in logged_numbers(private.log_path) if not client.exists(keys.rated(f"ev-{n}"))
    ]
    client.close()
    assert not missing, f"{len(missing)} users without ratings after rebuild, e.g. {missing[:5]}"


def test_rabbitmq_restarts_lose_nothing(
    settings: Settings, tmp_path: Path, stopper: list[Callable[[], None]]
) -> None:
    """A private RabbitMQ node, stopped cleanly and then killed -9, under load."""
    rabbit = PrivateRabbit(tmp_path / "rabbit")
    try:
        rabbit.start()
    except RabbitUnavailableError as error:
        pytest.skip(f"cannot start a private RabbitMQ node here: {error}")
    stopper.append(rabbit.stop)
    private = settings.model_copy(update={"amqp_url": rabbit.url})
    deployment = deploy(private, tmp_path)
    stopper.append(deployment.stop_all)
    stream = EventStream(deployment.collector)
    stream.start()
    stopper.append(stream.stop)
    time.sleep(3)

    for outage in (rabbit.stop, rabbit.kill):
        outage()
        time.sleep(1)
        # Broker down: /interact refuses within the publish timeout, it does not hang.
        started = time.monotonic()
        refused = httpx.post(
            f"{deployment.collector}/interact",
            json={"user_id": "probe", "item_ids": ["item-00"], "actions": ["like"]},
            timeout=10,
        )
        assert refused.status_code == 503, refused.text
        assert time.monotonic() - started < 4
        rabbit.start()
        deployment.wait_healthy(timeout=60)
        wait_until(
            lambda: len(stream.accepted) > 0 and _accepting(deployment),
            30,
            "the collector does not accept again after the broker came back",
        )
        time.sleep(3)
    check_recovered(deployment, stream, "rabbitmq clean stop and kill -9")


def _accepting(deployment: Deployment) -> bool:
    response = httpx.post(
        f"{deployment.collector}/interact",
        json={"user_id": "probe", "item_ids": ["item-00"], "actions": ["like"]},
        timeout=10,
    )
    return response.status_code == 200
