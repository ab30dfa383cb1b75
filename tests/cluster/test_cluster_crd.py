"""The CRD and its samples against the real API server: structural schema, defaults, real CEL."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.charts.test_crd import TRAINING_DEFAULTS
from tests.cluster.conftest import CRD, Kubectl

SAMPLES = CRD.parent / "samples"
VALID = sorted(SAMPLES.glob("*.yaml"))
INVALID = sorted((SAMPLES / "invalid").glob("*.yaml"))


def documented_error(path: Path) -> str:
    """The server's message: ``# server-error:`` when it differs from the offline
    (jsonschema) wording in ``# expected-error:``, which is used otherwise."""
    text = path.read_text()
    for key in ("server-error", "expected-error"):
        match = re.search(rf"^# {key}: (.+)$", text, re.MULTILINE)
        if match:
            return match.group(1).strip()
    raise AssertionError(f"{path.name} documents no expected error")


def test_crd_is_accepted_and_established(kubectl: Kubectl, crd: None) -> None:
    crd_obj = kubectl.get("crd", "recsystems.recsys.io")
    assert crd_obj is not None
    conditions = {c["type"]: c["status"] for c in crd_obj["status"]["conditions"]}
    assert conditions.get("Established") == "True"
    assert conditions.get("NonStructuralSchema", "False") == "False"
    assert set(crd_obj["status"]["acceptedNames"]["shortNames"]) == {"recsys", "rsys"}


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_samples_are_accepted_by_the_server(kubectl: Kubectl, crd: None, path: Path) -> None:
    kubectl.run("create", "--dry-run=server", "-f", str(path))


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_samples_are_rejected_by_the_server(
    kubectl: Kubectl, crd: None, path: Path
) -> None:
    result = kubectl.run("create", "--dry-run=server", "-f", str(path), check=False)
    assert result.returncode != 0, f"{path.name} was accepted"
    expected = documented_error(path)
    assert expected in result.stderr, f"expected {expected!r} in:\n{result.stderr}"


def test_server_applies_the_schema_defaults(kubectl: Kubectl, crd: None) -> None:
    """An almost empty spec comes back fully defaulted (nested defaults included)."""
    minimal = {
        "apiVersion": "recsys.io/v1alpha1",
        "kind": "RecSystem",
        "metadata": {"name": "defaults", "namespace": "default"},
        "spec": {"redis": {"secretRef": {"name": "c"}}, "amqp": {"secretRef": {"name": "c"}}},
    }
    out = kubectl.run(
        "create", "--dry-run=server", "-o", "json", "-f", "-", stdin=json.dumps(minimal)
    )
    spec = json.loads(out.stdout)["spec"]
    assert spec["training"] == TRAINING_DEFAULTS
    assert spec["api"]["autoscaling"] == {
        "enabled": True,
        "minReplicas": 2,
        "maxReplicas": 5,
        "targetCPUUtilizationPercentage": 70,
    }
    assert spec["redis"]["secretRef"]["key"] == "url"
    assert spec["ingress"] == {"enabled": False}
