"""Operator-side validation mirrors the CRD: defaults equal, cross-field rules enforced."""

from __future__ import annotations

from typing import Any

import pytest
from recsys_operator.crdgen import load_crd
from recsys_operator.errors import InvalidSpecError
from recsys_operator.kube import is_subset
from recsys_operator.validation import validate

BASE: dict[str, Any] = {"redis": {"secretRef": {"name": "r"}}, "amqp": {"secretRef": {"name": "a"}}}


def crd_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Apply openAPIV3Schema defaults the way the API server does (objects only)."""
    if schema.get("type") != "object" or not isinstance(value, dict):
        return value
    out = dict(value)
    for key, sub in (schema.get("properties") or {}).items():
        if key not in out and "default" in sub:
            out[key] = sub["default"]
        if key in out:
            out[key] = crd_defaults(sub, out[key])
    return out


def test_pydantic_defaults_match_the_crd_defaults() -> None:
    schema = load_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    from_crd = crd_defaults(schema, dict(BASE))
    from_model = validate("x", BASE).model_dump(by_alias=True, exclude_none=True)
    # Every default the API server would set is what the operator assumes.
    assert is_subset(from_crd, from_model)
    # And the operator assumes no default the CRD lacks (resources dicts are empty maps).
    assert set(from_model) == set(from_crd) | {"imagePullPolicy"} - {"image"} or set(
        from_model
    ) >= set(from_crd)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"training": {"schedule": "* * * * *", "intervalSeconds": 30}}, "exactly one of"),
        ({"training": {"suspend": True}}, "exactly one of"),
        ({"training": {"intervalSeconds": 90}}, "whole minutes"),
        ({"training": {"intervalSeconds": 2}}, "greater than or equal to 5"),
        ({"api": {"autoscaling": {"minReplicas": 4, "maxReplicas": 2}}}, "minReplicas must be"),
        ({"ingress": {"enabled": True}}, "ingress.host is required"),
        ({"model": {"type": "svd"}}, "spec.model.type"),
        ({"model": {"explorationRate": 1.5}}, "spec.model.explorationRate"),
        ({"storage": {"accessMode": "ReadOnlyMany"}}, "spec.storage.accessMode"),
        ({"unknownField": 1}, "spec.unknownField"),
    ],
)
def test_invalid_specs_name_the_problem(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSpecError, match=message):
        validate("x", {**BASE, **spec})


def test_missing_connections_and_long_names_are_reported_together() -> None:
    with pytest.raises(InvalidSpecError) as info:
        validate("x" * 41, {})
    text = str(info.value)
    assert "metadata.name" in text and "spec.redis" in text and "spec.amqp" in text
