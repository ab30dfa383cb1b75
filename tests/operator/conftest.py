"""Run the real kopf operator against an in-memory API server (kmock), in the test's loop."""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import kmock
import kopf
import kubernetes.config.kube_config
import pytest
import yaml
from recsys_operator import constants as c
from recsys_operator.config import OperatorConfig
from recsys_operator.kube import path_for

from tests.operator.emulator import RecsysEmulator

NAMESPACE = "shop"
VERBS = {"list", "watch", "get", "create", "patch", "delete"}

# (group/version/plural, kind) of everything the operator reads, writes or watches.
RESOURCES = [
    ("recsys.io/v1alpha1/recsystems", c.KIND, {"status"}),
    ("v1/configmaps", "ConfigMap", set()),
    ("v1/secrets", "Secret", set()),
    ("v1/services", "Service", set()),
    ("v1/persistentvolumeclaims", "PersistentVolumeClaim", set()),
    ("v1/pods", "Pod", set()),
    ("v1/events", "Event", set()),
    ("apps/v1/deployments", "Deployment", {"status"}),
    ("batch/v1/jobs", "Job", {"status"}),
    ("batch/v1/cronjobs", "CronJob", set()),
    ("autoscaling/v2/horizontalpodautoscalers", "HorizontalPodAutoscaler", set()),
    ("policy/v1/poddisruptionbudgets", "PodDisruptionBudget", set()),
    ("networking.k8s.io/v1/ingresses", "Ingress", set()),
    ("networking.k8s.io/v1/networkpolicies", "NetworkPolicy", set()),
    ("monitoring.coreos.com/v1/servicemonitors", "ServiceMonitor", set()),
    ("monitoring.coreos.com/v1/prometheusrules", "PrometheusRule", set()),
]


def sample_recsystem(name: str = "demo", **spec: Any) -> dict[str, Any]:
    """A minimal valid RecSystem; keyword arguments override spec sections."""
    body: dict[str, Any] = {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND,
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "image": "recsys:test",
            "redis": {"secretRef": {"name": "redis-conn"}},
            "amqp": {"secretRef": {"name": "amqp-conn"}},
            "training": {"intervalSeconds": 30},
        },
    }
    body["spec"].update(spec)
    return body


class OperatorThread:
    """The real kopf operator, in its own thread and event loop."""

    def __init__(self, config: OperatorConfig, exit_timeout: float) -> None:
        self.config = config
        self.exit_timeout = exit_timeout
        self.stopped = False
        self.errors: list[BaseException] = []
        self._stop, self._ready = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="kopf", daemon=True)

    def _run(self) -> None:
        settings = kopf.OperatorSettings()
        # Shorter than production so that teardown does not wait for idle workers.
        settings.queueing.idle_timeout = 0.5
        settings.queueing.exit_timeout = self.exit_timeout
        try:
            asyncio.run(
                kopf.operator(
                    clusterwide=True,
                    standalone=True,
                    stop_flag=self._stop,
                    ready_flag=self._ready,
                    memo=kopf.Memo(config=self.config),
                    settings=settings,
                )
            )
        except BaseException as exc:  # surfaced by stop()
            self.errors.append(exc)

    async def start(self) -> None:
        self._thread.start()
        started = await asyncio.to_thread(self._ready.wait, 15)
        assert started, f"operator did not start: {self.errors}"

    async def stop(self) -> None:
        """What SIGTERM does: set kopf's stop flag; the operator must exit cleanly."""
        self.stopped = True
        self._stop.set()
        await asyncio.to_thread(self._thread.join, 30)
        assert not self._thread.is_alive(), "operator did not stop"
        assert not self.errors, "operator crashed:\n" + "".join(
            line for exc in self.errors for line in traceback.format_exception(exc)
        )


class Cluster:
    """Test-side client of the emulated API server (independent of the operator's Kube)."""

    def __init__(self, emulator: RecsysEmulator, operator: OperatorThread) -> None:
        self.emulator = emulator
        self.operator = operator

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await getattr(self.emulator, method)(path, **kwargs)
        async with response:
            payload = await response.json(content_type=None)
            if response.status >= 400:
                raise AssertionError(f"{method.upper()} {path}: {response.status} {payload}")
            return payload

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        path = path_for(obj["apiVersion"], obj["kind"], meta.get("namespace", NAMESPACE))
        result: dict[str, Any] = await self._request("post", path, json=obj)
        return result

    async def get(self, api_version: str, kind: str, name: str) -> dict[str, Any] | None:
        response = await self.emulator.get(path_for(api_version, kind, NAMESPACE, name))
        async with response:
            if response.status == 404:
                return None
            result: dict[str, Any] = await response.json(content_type=None)
            return result

    async def list(self, api_version: str, kind: str, **labels: str) -> list[dict[str, Any]]:
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        params = {"labelSelector": selector} if selector else {}
        payload = await self._request("get", path_for(api_version, kind, NAMESPACE), params=params)
        items: list[dict[str, Any]] = payload["items"]
        return items

    async def patch(
        self, api_version: str, kind: str, name: str, patch: Any, subresource: str = ""
    ) -> dict[str, Any]:
        path = path_for(api_version, kind, NAMESPACE, name) + (
            f"/{subresource}" if subresource else ""
        )
        headers = {"Content-Type": "application/merge-patch+json"}
        result: dict[str, Any] = await self._request("patch", path, json=patch, headers=headers)
        return result

    async def delete(self, api_version: str, kind: str, name: str) -> None:
        await self._request("delete", path_for(api_version, kind, NAMESPACE, name))

    async def delete_all_recsystems(self) -> None:
        """Delete every RecSystem and wait until kopf has released them."""
        for item in await self.list(c.API_VERSION, c.KIND):
            await self.delete(c.API_VERSION, c.KIND, item["metadata"]["name"])
        for item in await self.list(c.API_VERSION, c.KIND):
            await self.gone_eventually(c.API_VERSION, c.KIND, item["metadata"]["name"])

    async def eventually(
        self,
        probe: Callable[[], Awaitable[Any]],
        timeout: float = 30.0,
        message: str = "condition",
    ) -> Any:
        """Poll ``probe`` until it returns something truthy.

        Generous: it only bounds a failure, and on a loaded 2-core CI runner one scheduler
        cycle (a 0.2 s tick plus a dozen API calls through two event loops) took over 10 s.
        """
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = await probe()
            if last:
                return last
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {message}; last value: {last!r}")

    async def get_eventually(self, api_version: str, kind: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.eventually(
            lambda: self.get(api_version, kind, name), message=f"{kind}/{name}"
        )
        return result

    async def gone_eventually(self, api_version: str, kind: str, name: str) -> None:
        async def gone() -> bool:
            return await self.get(api_version, kind, name) is None

        await self.eventually(gone, message=f"{kind}/{name} to be deleted")


def _declare_resources(emulator: RecsysEmulator) -> None:
    for key, kind, subresources in RESOURCES:
        emulator.resources[key] = kmock.ResourceInfo(
            kind=kind,
            namespaced=True,
            verbs=VERBS,
            subresources=subresources,
            singular=kind.lower(),
        )
    # kopf waits for these two to appear in discovery before it starts any watcher.
    for key, kind in (
        ("v1/namespaces", "Namespace"),
        ("apiextensions.k8s.io/v1/customresourcedefinitions", "CustomResourceDefinition"),
    ):
        emulator.resources[key] = kmock.ResourceInfo(
            kind=kind, namespaced=False, verbs=VERBS, singular=kind.lower()
        )


@pytest.fixture()
def operator_config() -> OperatorConfig:
    """Fast ticks so scheduling tests take seconds, not minutes."""
    return OperatorConfig(default_image="recsys:default", tick_seconds=0.2, resync_seconds=1.0)


@pytest.fixture()
def exit_timeout() -> float:
    """kopf's grace period for busy workers at exit (production: 2 s); short for fast teardown."""
    return 0.5


@pytest.fixture()
async def cluster(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    operator_config: OperatorConfig,
    exit_timeout: float,
) -> AsyncIterator[Cluster]:
    """An emulated API server with the operator running against it."""
    async with RecsysEmulator() as emulator, kmock.Server(emulator) as server:
        _declare_resources(emulator)
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "kmock",
                    "clusters": [
                        {"name": "kmock", "cluster": {"server": str(server.url).rstrip("/")}}
                    ],
                    "users": [{"name": "kmock", "user": {"token": "test"}}],
                    "contexts": [
                        {"name": "kmock", "context": {"cluster": "kmock", "user": "kmock"}}
                    ],
                }
            )
        )
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        # The client computes its default location at import time; point it here as well.
        monkeypatch.setattr(
            kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig)
        )
        import recsys_operator.main  # noqa: F401  (registers the handlers)

        # kopf runs in its own thread and loop: at exit it cancels every task it did not see
        # at startup, which in a shared loop would include pytest's own fixture finalizers.
        operator = OperatorThread(operator_config, exit_timeout)
        await operator.start()
        cluster = Cluster(emulator, operator)
        try:
            yield cluster
        finally:
            if not operator.stopped:
                # Delete the RecSystems first so that every test also checks that nothing
                # holds them back (no finalizer); tests that stop the operator with live
                # RecSystems (the SIGTERM case) call `operator.stop()`.
                await cluster.delete_all_recsystems()
                await operator.stop()


@pytest.fixture(autouse=True)
def _quiet_loggers() -> None:
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def deep(obj: Any) -> Any:
    """Deep copy helper for tests that mutate fixtures."""
    return copy.deepcopy(obj)
