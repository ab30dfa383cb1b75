"""Alerts that can fire: the rules of the app chart and of the operator run through
promtool's rule unit tests, on series named as the services export them; and every metric a
rule or a dashboard panel reads is in a real scrape of the api and the collector, the model's
age with its real value."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from redis import Redis

from services.api.main import create_app as create_api
from services.collector.main import create_app as create_collector
from services.common.settings import Settings
from tests.charts.conftest import ROOT, Render, monitoring_args
from tests.factories import catalogue, publish, two_taste_events
from tests.unit.operator.test_builders import FULL, make

PROMTOOL_DIR = ROOT / ".cache" / "promtool" / "usr" / "bin"
METRIC = re.compile(r"\brecsys_[a-z0-9_]+")


@pytest.fixture(scope="session")
def promtool() -> str:
    """promtool from Debian's prometheus package (scripts/install-promtool.sh); fails in CI
    when it cannot be had, skips on a laptop without apt."""
    found = shutil.which("promtool") or shutil.which("promtool", path=str(PROMTOOL_DIR))
    if found is None:
        subprocess.run(
            [str(ROOT / "scripts" / "install-promtool.sh")],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
            timeout=600,
        )
        found = shutil.which("promtool", path=str(PROMTOOL_DIR))
    if found is None:
        message = "promtool is missing and scripts/install-promtool.sh could not fetch it"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def _chart_rule(render: Render, app_chart: Path) -> dict[str, Any]:
    values = str(app_chart / "ci" / "monitoring-values.yaml")
    objs = render(app_chart, "-f", values, *monitoring_args())
    [rule] = [o for o in objs if o["kind"] == "PrometheusRule"]
    return rule


def _operator_rule() -> dict[str, Any]:
    from recsys_operator.builders import build_plan

    [rule] = [o for o in build_plan(make(**FULL)).apply if o["kind"] == "PrometheusRule"]
    return rule


def _seconds(duration: str) -> int:
    value, unit = int(duration[:-1]), duration[-1]
    return value * {"s": 1, "m": 60, "h": 3600}[unit]


def _cases(rule: dict[str, Any], namespace: str, name: str) -> dict[str, Any]:
    """promtool test cases for every alert of ``rule`` (an instance ``name``)."""
    alerts = {r["alert"]: r for r in rule["spec"]["groups"][0]["rules"]}
    stale = alerts["RecsysModelStale"]
    stale_after = int(re.search(r"> (\d+)\)", stale["expr"]).group(1))  # type: ignore[union-attr]
    hold = _seconds(stale["for"])
    steps = (stale_after + hold) // 60 + 10
    api = f'namespace="{namespace}",job="{name}-api"'
    http = f'namespace="{namespace}",job="{name}-api",service="api",route="/recs/{{user_id}}"'
    buckets = "recsys_http_request_duration_seconds_bucket"

    def fired(alert: str, at_min: int, labels: dict[str, str]) -> dict[str, Any]:
        expected = {
            "exp_labels": {**alerts[alert].get("labels", {}), **labels},
            "exp_annotations": alerts[alert].get("annotations", {}),
        }
        return {"eval_time": f"{at_min}m", "alertname": alert, "exp_alerts": [expected]}

    def quiet(alert: str, at_min: int) -> dict[str, Any]:
        return {"eval_time": f"{at_min}m", "alertname": alert, "exp_alerts": []}

    after = steps - 1
    return {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {  # One model trained at t=0 and never again: stale once old enough.
                "interval": "1m",
                "input_series": [
                    {
                        "series": f"recsys_model_trained_timestamp_seconds{{{api}}}",
                        "values": f"0+0x{steps}",
                    }
                ],
                "alert_rule_test": [
                    quiet("RecsysModelStale", 1),
                    fired("RecsysModelStale", after, {}),
                ],
            },
            {  # Retrained every minute (trained_at follows the clock): never stale.
                "interval": "1m",
                "input_series": [
                    {
                        "series": f"recsys_model_trained_timestamp_seconds{{{api}}}",
                        "values": f"0+60x{steps}",
                    }
                ],
                "alert_rule_test": [quiet("RecsysModelStale", after)],
            },
            {  # No api scraped at all: absent() fires with the selector's labels.
                "interval": "1m",
                "input_series": [
                    {"series": f'up{{namespace="{namespace}"}}', "values": f"1+0x{steps}"}
                ],
                "alert_rule_test": [
                    fired("RecsysModelStale", after, {"namespace": namespace, "job": f"{name}-api"})
                ],
            },
            {  # Half the requests fail, and every one takes about a second.
                "interval": "1m",
                "input_series": [
                    {
                        "series": f'recsys_http_requests_total{{{http},method="GET",status="500"}}',
                        "values": "0+60x20",
                    },
                    {
                        "series": f'recsys_http_requests_total{{{http},method="GET",status="200"}}',
                        "values": "0+60x20",
                    },
                    *(
                        {
                            "series": f'{buckets}{{{http},le="{le}"}}',
                            "values": f"0+{rate}x20",
                        }
                        for le, rate in (("0.1", 0), ("0.5", 0), ("2.5", 120), ("+Inf", 120))
                    ),
                ],
                "alert_rule_test": [
                    quiet("RecsysHighErrorRate", 2),
                    fired("RecsysHighErrorRate", 15, {}),
                    quiet("RecsysHighLatency", 5),
                    fired("RecsysHighLatency", 18, {}),
                ],
            },
        ],
    }


@pytest.mark.parametrize("source", ["chart", "operator"])
def test_every_alert_fires_and_stays_quiet_when_it_should(
    source: str, promtool: str, render: Render, app_chart: Path, tmp_path: Path
) -> None:
    if source == "chart":
        rule, namespace, name = _chart_rule(render, app_chart), "shop", "recsys"
    else:
        rule, namespace, name = _operator_rule(), "ns", "demo"
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(_cases(rule, namespace, name)))
    check = subprocess.run(
        [promtool, "check", "rules", "rules.yaml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    result = subprocess.run(
        [promtool, "test", "rules", "test.yaml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _scrape(client: TestClient) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    return response.text


@pytest.mark.backends("real")
def test_rules_and_panels_read_metrics_the_services_export(
    settings: Settings, redis_client: Redis, render: Render, app_chart: Path
) -> None:
    items, genres = catalogue(10)
    model = publish(settings, redis_client, two_taste_events(items), "popularity")
    with (
        TestClient(create_api(settings)) as api,
        TestClient(create_collector(settings)) as collector,
    ):
        assert api.post("/add_items", json={"item_ids": items, "genres": genres}).status_code == 200
        assert api.get("/recs/someone").status_code == 200  # loads the model
        exported = _scrape(api) + _scrape(collector)
    trained = re.search(r"^recsys_model_trained_timestamp_seconds (\S+)$", exported, re.M)
    assert trained is not None and float(trained.group(1)) == pytest.approx(model.trained_at)

    families = {line.split()[2] for line in exported.splitlines() if line.startswith("# TYPE")}
    chart = _chart_rule(render, app_chart)
    dashboard = json.loads((app_chart / "files" / "dashboard.json").read_text())
    used = set(METRIC.findall(json.dumps(chart["spec"]) + json.dumps(_operator_rule()["spec"])))
    used |= set(METRIC.findall(json.dumps(dashboard)))
    missing = {
        name
        for name in used
        if re.sub(r"_(bucket|count|sum|total)$", "", name) not in families and name not in families
    }
    assert not missing, f"rules or panels read metrics nobody exports: {sorted(missing)}"
