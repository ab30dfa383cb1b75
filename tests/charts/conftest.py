"""helm/kubectl from the project's installer, and a copy of the app chart."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHARTS = ROOT / "charts"
APP_CHART = CHARTS / "recsys"
OPERATOR_CHART = CHARTS / "recsys-operator"
TOOLS_DIR = Path(os.environ.get("K8S_TOOLS_DIR", ROOT / ".cache" / "k8s-tools"))
MONITORING_APIS = [
    "monitoring.coreos.com/v1/ServiceMonitor",
    "monitoring.coreos.com/v1/PrometheusRule",
]
VALUES_FILES = sorted((APP_CHART / "ci").glob("*.yaml"))

Render = Callable[..., list[dict[str, Any]]]


@pytest.fixture(scope="session")
def helm() -> str:
    """Path to helm, installed by scripts/install-k8s-tools.sh when missing.

    Skips locally when it cannot be installed (offline laptop); fails in CI (CI=true), where
    a silently skipped chart suite would hide broken charts.
    """
    binary = TOOLS_DIR / "bin" / "helm"
    if not binary.exists():
        script = ROOT / "scripts" / "install-k8s-tools.sh"
        result = subprocess.run(
            [str(script), str(TOOLS_DIR)],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            check=False,
            timeout=300,
        )
        if result.returncode != 0 or not binary.exists():
            message = f"cannot install helm/kubectl: {result.stderr[-2000:]}"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(message)
            pytest.skip(message)
    return str(binary)


def run(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a CLI, no stdin, text output."""
    result = subprocess.run(
        cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False, timeout=120
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def app_chart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the app chart (tests may write values files next to it). It has no
    dependencies any more, so nothing is stubbed: what renders here is what users install."""
    copy = tmp_path_factory.mktemp("charts") / "recsys"
    shutil.copytree(APP_CHART, copy)
    yield copy


def parse(text: str) -> list[dict[str, Any]]:
    """Rendered multi-document YAML to objects (empty documents dropped)."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(scope="session")
def render(helm: str) -> Render:
    """``render(chart, *helm_args)`` → list of objects."""

    def _render(
        chart: Path, *args: str, release: str = "recsys", namespace: str = "shop"
    ) -> list[dict[str, Any]]:
        result = run([helm, "template", release, str(chart), "-n", namespace, *args])
        return parse(result.stdout)

    return _render


def monitoring_args() -> list[str]:
    args: list[str] = []
    for api in MONITORING_APIS:
        args += ["--api-versions", api]
    return args
