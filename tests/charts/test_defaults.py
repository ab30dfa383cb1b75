"""Defaults come from one place: the services' Settings. The chart and the operator leave the
model settings unset unless given (so the tuned defaults apply), produce the same environment
for the same settings, accept the same ranges, and train on the same cadence by default."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from annotated_types import Ge, Gt, Le

from services.common.settings import Settings
from tests.charts.conftest import APP_CHART, Render
from tests.unit.operator.test_builders import make

# Settings field -> (chart values path under config, CRD path under spec.model)
MODEL_SETTINGS = {
    "model": ("model", "type"),
    "default_k": ("defaultK", "defaultK"),
    "exploration_rate": ("explorationRate", "explorationRate"),
    "lightfm_components": ("lightfm.components", "lightfm.components"),
    "lightfm_epochs": ("lightfm.epochs", "lightfm.epochs"),
    "lightfm_learning_rate": ("lightfm.learningRate", "lightfm.learningRate"),
}
ENV = {name: f"RECSYS_{name.upper()}" for name in MODEL_SETTINGS}
GIVEN: dict[str, Any] = {
    "model": "lightfm",
    "default_k": 25,
    "exploration_rate": 0.0,
    "lightfm_components": 48,
    "lightfm_epochs": 30,
    "lightfm_learning_rate": 0.03,
}


def _chart_env(render: Render, chart: Path, given: dict[str, Any]) -> dict[str, str]:
    args: list[str] = []
    for name, value in given.items():
        args += ["--set-json", f"config.{MODEL_SETTINGS[name][0]}={json.dumps(value)}"]
    [config] = [
        o for o in render(chart, *args) if o["kind"] == "ConfigMap" and "RECSYS_QUEUE" in o["data"]
    ]
    return {k: v for k, v in config["data"].items() if k in ENV.values()}


def _operator_env(given: dict[str, Any]) -> dict[str, str]:
    from recsys_operator.builders.configmap import build_config_data

    model: dict[str, Any] = {"lightfm": {}}
    for name, value in given.items():
        *parents, leaf = MODEL_SETTINGS[name][1].split(".")
        (model[parents[0]] if parents else model)[leaf] = value
    data = build_config_data(make(model=model))
    return {k: v for k, v in data.items() if k in ENV.values()}


@pytest.mark.parametrize("given", [{}, GIVEN], ids=["defaults", "given"])
def test_chart_and_operator_give_the_services_the_same_model_settings(
    render: Render, app_chart: Path, given: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    chart, operator = _chart_env(render, app_chart, given), _operator_env(given)
    assert chart == operator
    assert set(chart) == {ENV[name] for name in given}  # nothing but what was given
    for name, value in chart.items():
        monkeypatch.setenv(name, value)
    parsed = Settings()
    for name, value in given.items():
        assert getattr(parsed, name) == value


def _bounds(field: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for rule in Settings.model_fields[field].metadata:
        if isinstance(rule, Ge):
            found["minimum"] = float(rule.ge)  # type: ignore[arg-type]
        elif isinstance(rule, Gt):
            found["exclusiveMinimum"] = float(rule.gt)  # type: ignore[arg-type]
        elif isinstance(rule, Le):
            found["maximum"] = float(rule.le)  # type: ignore[arg-type]
    return found


def _schema_bounds(node: dict[str, Any]) -> dict[str, float]:
    found = {k: float(node[k]) for k in ("minimum", "maximum") if k in node}
    exclusive = node.get("exclusiveMinimum")
    if exclusive is True:  # OpenAPI 3.0 (the CRD): a flag on minimum
        found["exclusiveMinimum"] = found.pop("minimum")
    elif isinstance(exclusive, int | float):  # JSON Schema (the chart): the bound itself
        found["exclusiveMinimum"] = float(exclusive)
    return found


def _node(schema: dict[str, Any], dotted: str) -> dict[str, Any]:
    for part in dotted.split("."):
        schema = schema["properties"][part]
    return schema


def test_same_ranges_and_no_second_default() -> None:
    from recsys_operator.crdgen import load_crd

    chart = json.loads((APP_CHART / "values.schema.json").read_text())["properties"]["config"]
    crd = load_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    crd_model = crd["properties"]["spec"]["properties"]["model"]
    for field, (chart_path, crd_path) in MODEL_SETTINGS.items():
        chart_node, crd_node = _node(chart, chart_path), _node(crd_model, crd_path)
        assert "default" not in crd_node, field
        if field == "model":
            options = set(Settings.model_fields[field].annotation.__args__)  # type: ignore[union-attr]
            assert set(crd_node["enum"]) == options == set(chart_node["enum"]) - {None}
            continue
        assert _schema_bounds(chart_node) == _bounds(field) == _schema_bounds(crd_node), field


def test_training_runs_minutes_apart_by_default(render: Render, app_chart: Path) -> None:
    from recsys_operator.builders.trainer import nominal_interval_seconds

    [cronjob] = [o for o in render(app_chart) if o["kind"] == "CronJob"]
    operator_default = make().spec.training
    assert cronjob["spec"]["schedule"] == operator_default.schedule == "*/15 * * * *"
    assert nominal_interval_seconds(operator_default) == 900


@pytest.mark.parametrize("component", ["api", "collector"])
def test_chart_and_operator_probe_the_same_ports_and_paths(
    render: Render, app_chart: Path, component: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both point readiness and liveness at the probe port the service really opens."""
    from recsys_operator.builders.configmap import build_config_data
    from recsys_operator.builders.deployments import (
        build_api_deployment,
        build_collector_deployment,
    )

    objs = render(app_chart)
    [chart_config] = [o for o in objs if o["kind"] == "ConfigMap" and "RECSYS_QUEUE" in o["data"]]
    [chart_deployment] = [
        o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"].endswith(component)
    ]
    build = build_api_deployment if component == "api" else build_collector_deployment
    sides = {
        "chart": (chart_deployment, chart_config["data"]),
        "operator": (build(make()), build_config_data(make())),
    }
    seen = {}
    for side, (deployment, env) in sides.items():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings = Settings()
        # The ports the container declares are the ones the service listens on.
        assert ports == {
            "http": getattr(settings, f"{component}_port"),
            "probes": getattr(settings, f"{component}_health_port"),
        }, side
        probes = {
            kind: container[kind]["httpGet"]
            for kind in ("startupProbe", "readinessProbe", "livenessProbe")
        }
        assert probes == {
            "startupProbe": {"path": "/metrics", "port": "http"},
            "readinessProbe": {"path": "/healthcheck", "port": "probes"},
            "livenessProbe": {"path": "/livez", "port": "probes"},
        }, side
        seen[side] = (ports, probes)
    assert seen["chart"] == seen["operator"]
