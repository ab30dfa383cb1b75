"""The `cluster` tier: one real control plane per session, shared by every test in here.

The binaries are built by ``scripts/control-plane.sh build`` (``scripts/test.sh`` runs it before
pytest). Missing binaries fail the tier under ``CI=true``; elsewhere they skip it with the
command to run, since the first build takes tens of minutes.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from tests.charts.conftest import TOOLS_DIR, app_chart, helm  # noqa: F401 (fixtures)
from tests.cluster.controlplane import ROOT, ControlPlane, ControlPlaneError, binaries_dir

CRD = ROOT / "manifests" / "crd.yaml"
IN_CI = os.environ.get("CI", "").lower() == "true"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/cluster belongs to the `cluster` tier (select with -m)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """etcd + kube-apiserver + kube-controller-manager, started once, stopped at the end."""
    try:
        bin_dir = binaries_dir(build=IN_CI)
    except ControlPlaneError as exc:
        if IN_CI:
            pytest.fail(str(exc))
        pytest.skip(f"{exc}\nrun scripts/control-plane.sh build (20-40 min once, then cached)")
    plane = ControlPlane(bin_dir=bin_dir, state_dir=tmp_path_factory.mktemp("control-plane"))
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


class Kubectl:
    """The real kubectl (from scripts/install-k8s-tools.sh) against one kubeconfig."""

    def __init__(self, binary: Path, kubeconfig: Path) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.binary), f"--kubeconfig={self.kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def apply(self, objs: list[dict[str, Any]] | dict[str, Any], *extra: str) -> str:
        docs = objs if isinstance(objs, list) else [objs]
        return self.run("apply", "-f", "-", *extra, stdin=yaml.safe_dump_all(docs)).stdout

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        ns = ["-n", namespace] if namespace else []
        result = self.run("get", kind, name, *ns, "-o", "json", check=False)
        if result.returncode != 0:
            if "NotFound" in result.stderr:
                return None
            raise AssertionError(result.stderr)
        obj: dict[str, Any] = json.loads(result.stdout)
        return obj

    def items(self, kind: str, namespace: str, selector: str = "") -> list[dict[str, Any]]:
        sel = ["-l", selector] if selector else []
        result = self.run("get", kind, "-n", namespace, *sel, "-o", "json")
        items: list[dict[str, Any]] = json.loads(result.stdout)["items"]
        return items


@pytest.fixture(scope="session")
def kubectl(control_plane: ControlPlane, helm: str) -> Kubectl:  # noqa: F811
    """Admin kubectl (system:masters: bypasses RBAC, used only to set up and observe)."""
    return Kubectl(TOOLS_DIR / "bin" / "kubectl", control_plane.admin_kubeconfig)


@pytest.fixture(scope="session")
def crd(kubectl: Kubectl) -> None:
    """The RecSystem CRD applied and Established."""
    kubectl.run("apply", "--server-side", "-f", str(CRD))
    kubectl.run("wait", "--for=condition=Established", "crd/recsystems.recsys.io", "--timeout=60s")


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace per test (deleted afterwards, without waiting)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    kubectl.run("create", "namespace", name)
    # The serviceaccount controller must have made "default" before Pods can be created.
    eventually(lambda: kubectl.get("serviceaccount", "default", name), what="default SA")
    yield name
    # RecSystems first (nothing holds them back: no finalizer); deleting the namespace alone
    # could leave the operator re-creating children the namespace controller deletes.
    kubectl.run("delete", "recsystems", "--all", "-n", name, "--timeout=60s", check=False)
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)


def eventually(
    probe: Callable[[], Any], timeout: float = 60.0, interval: float = 0.5, what: str = "it"
) -> Any:
    """Poll ``probe`` until it returns something truthy (AssertionError counts as not yet)."""

    class NotYetError(Exception):
        pass

    def attempt_once() -> Any:
        try:
            value = probe()
        except AssertionError as exc:
            raise NotYetError(str(exc)) from exc
        if not value:
            raise NotYetError(f"{what}: got {value!r}")
        return value

    try:
        for attempt in Retrying(
            stop=stop_after_delay(timeout),
            wait=wait_fixed(interval),
            retry=retry_if_exception_type(NotYetError),
            reraise=True,
        ):
            with attempt:
                return attempt_once()
    except NotYetError as exc:
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}: {exc}") from exc
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def monitoring_crds(kubectl: Kubectl) -> None:
    """Stub Prometheus Operator CRDs (see the file's header for what they do not check)."""
    stub = Path(__file__).parent / "fixtures" / "monitoring-crds-stub.yaml"
    kubectl.run("apply", "--server-side", "-f", str(stub))
    for name in ("servicemonitors", "prometheusrules"):
        kubectl.run(
            "wait", "--for=condition=Established", f"crd/{name}.monitoring.coreos.com",
            "--timeout=60s",
        )  # fmt: skip


class Helm:
    """The real helm against the admin kubeconfig."""

    def __init__(self, binary: str, kubeconfig: Path) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.binary, f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            check=False,
            timeout=300,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"helm {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result


@pytest.fixture(scope="session")
def helm_cli(helm: str, control_plane: ControlPlane) -> Helm:  # noqa: F811
    return Helm(helm, control_plane.admin_kubeconfig)
