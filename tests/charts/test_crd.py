"""The RecSystem CRD: rendered copies in sync, samples accepted, bad samples rejected.

The API server is the authority; offline we approximate it with jsonschema (after applying the
schema's defaults, as the server does) plus the x-kubernetes-validations rules run by cel-python.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import pytest
import yaml
from recsys_operator import crdgen
from recsys_operator.validation import validate as operator_validate

from tests.charts.conftest import ROOT

SAMPLES = ROOT / "manifests" / "samples"
VALID = sorted(p for p in SAMPLES.glob("recsystem*.yaml"))
INVALID = sorted((SAMPLES / "invalid").glob("*.yaml"))


def schema() -> dict[str, Any]:
    crd = crdgen.load_crd()
    [version] = crd["spec"]["versions"]
    result: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return result


def apply_defaults(node: dict[str, Any], value: Any) -> Any:
    """Structural defaulting: fill absent properties that declare a default, recursively."""
    if node.get("type") != "object" or not isinstance(value, dict):
        return value
    out = dict(value)
    for key, sub in (node.get("properties") or {}).items():
        if key not in out and "default" in sub:
            out[key] = copy.deepcopy(sub["default"])
        if key in out:
            out[key] = apply_defaults(sub, out[key])
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        for key in set(out) - set(node.get("properties") or {}):
            out[key] = apply_defaults(extra, out[key])
    return out


def cel_errors(node: dict[str, Any], value: Any, env: celpy.Environment) -> list[str]:
    """Evaluate every x-kubernetes-validations rule on the (defaulted) object."""
    errors: list[str] = []
    for rule in node.get("x-kubernetes-validations") or []:
        program = env.program(env.compile(rule["rule"]))
        activation = {"self": celpy.json_to_cel(value)}  # type: ignore[attr-defined]
        if not bool(program.evaluate(activation)):
            errors.append(rule.get("message") or rule["rule"])
    if node.get("type") == "object" and isinstance(value, dict):
        for key, sub in (node.get("properties") or {}).items():
            if key in value:
                errors.extend(cel_errors(sub, value[key], env))
    return errors


def admit(obj: dict[str, Any]) -> list[str]:
    """What the API server would say about ``obj`` (empty list: admitted)."""
    root = schema()
    defaulted = apply_defaults(root, obj)
    # OpenAPI v3.0 (boolean exclusiveMinimum) matches JSON Schema draft 4.
    validator = jsonschema.Draft4Validator(root)
    errors = [e.message for e in validator.iter_errors(defaulted)]
    if not errors:  # the API server runs CEL only on schema-valid objects
        errors = cel_errors(root, defaulted, celpy.Environment())
    return errors


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def test_rendered_crd_copies_are_in_sync() -> None:
    assert crdgen.main(["--check", "--root", str(ROOT)]) == 0, (
        "run: PYTHONPATH=operator python -m recsys_operator.crdgen"
    )


def test_crd_shape() -> None:
    crd = crdgen.load_crd()
    assert crd["metadata"]["name"] == "recsystems.recsys.io"
    assert "rs" not in crd["spec"]["names"]["shortNames"]
    [version] = crd["spec"]["versions"]
    assert set(version["subresources"]) == {"status", "scale"}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Ready"] == '.status.conditions[?(@.type=="Ready")].status'
    assert {"Model", "Last-Training", "NDCG@10", "Age"} <= set(columns)


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_samples_are_admitted(path: Path) -> None:
    obj = load(path)
    assert admit(obj) == []
    # The operator agrees with the schema about the defaulted object.
    defaulted = apply_defaults(schema(), obj)
    operator_validate(obj["metadata"]["name"], defaulted["spec"])


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_samples_are_rejected_with_a_clear_message(path: Path) -> None:
    text = path.read_text()
    match = re.search(r"^# expected-error: (.+)$", text, re.MULTILINE)
    assert match, f"{path.name} must say which error it expects"
    expected = match.group(1).strip()
    errors = admit(yaml.safe_load(text))
    assert errors, f"{path.name} was admitted"
    assert any(expected in e for e in errors), errors


# What the CRD fills into an empty training spec (offline here, by the API server in
# tests/cluster/test_cluster_crd.py).
TRAINING_DEFAULTS = {
    "schedule": "*/15 * * * *",
    "suspend": False,
    "concurrencyPolicy": "Forbid",
    "successfulJobsHistoryLimit": 3,
    "failedJobsHistoryLimit": 1,
    "activeDeadlineSeconds": 600,
    "backoffLimit": 0,
    "resources": {},
}


def test_defaults_fill_an_empty_spec() -> None:
    obj = {
        "metadata": {"name": "x"},
        "spec": {"redis": {"secretRef": {"name": "r"}}, "amqp": {"secretRef": {"name": "a"}}},
    }
    spec = apply_defaults(schema(), obj)["spec"]
    assert spec["training"] == TRAINING_DEFAULTS
    assert spec["api"]["autoscaling"]["minReplicas"] == 2
    assert spec["redis"]["secretRef"]["key"] == "url"
    assert admit(obj) == []
