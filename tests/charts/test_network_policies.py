"""Isolation that holds, judged by NetworkPolicy semantics over the whole rendered release:
only recsys's own clients reach the bundled Redis and RabbitMQ, from this namespace or the
namespaces the release names, and the sub-charts' own allow-all policies stay off."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts.conftest import APP_CHART, Render
from tests.charts.network_policy import Pod, admits

NAMESPACE = "shop"
REDIS = Pod(NAMESPACE, {"app.kubernetes.io/name": "redis", "app.kubernetes.io/instance": "recsys"})
RABBITMQ = Pod(
    NAMESPACE, {"app.kubernetes.io/name": "rabbitmq", "app.kubernetes.io/instance": "recsys"}
)
INTRUDER = Pod(NAMESPACE, {"app": "something-else"})


def _pods(objs: list[dict[str, Any]]) -> dict[str, Pod]:
    """The release's own pods, by component, with the labels their templates give them."""
    pods: dict[str, Pod] = {}
    for obj in objs:
        spec = obj.get("spec", {})
        if obj["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        if obj["kind"] in {"Deployment", "CronJob"}:
            labels = spec["template"]["metadata"]["labels"]
            pods[labels["app.kubernetes.io/component"]] = Pod(NAMESPACE, labels)
    return pods


def _release(
    render: Render, app_chart: Path, *args: str
) -> tuple[list[dict[str, Any]], dict[str, Pod]]:
    objs = render(app_chart, *args, namespace=NAMESPACE)
    return [o for o in objs if o["kind"] == "NetworkPolicy"], _pods(objs)


def test_only_recsys_clients_reach_redis_and_rabbitmq(render: Render, app_chart: Path) -> None:
    policies, pods = _release(render, app_chart)
    for component in ("api", "collector", "ingest"):
        assert admits(policies, pods[component], REDIS, 6379), component
    for component in ("collector", "ingest"):
        assert admits(policies, pods[component], RABBITMQ, 5672), component
    assert admits(policies, pods["train"], REDIS, 6379)
    assert not admits(policies, pods["train"], RABBITMQ, 5672)  # training never publishes
    for target, port in ((REDIS, 6379), (RABBITMQ, 5672)):
        assert not admits(policies, INTRUDER, target, port)
        # A pod wearing the client label but not part of recsys is still refused.
        impostor = Pod(
            NAMESPACE, {"recsys.io/redis-client": "true", "recsys.io/amqp-client": "true"}
        )
        assert not admits(policies, impostor, target, port)
    assert not admits(policies, pods["api"], REDIS, 9999)  # only the server's ports


def test_clients_in_other_namespaces_only_when_named(render: Render, app_chart: Path) -> None:
    client_labels = {
        "app.kubernetes.io/part-of": "recsys",
        "recsys.io/redis-client": "true",
        "recsys.io/amqp-client": "true",
    }
    team = Pod("team-a", client_labels, {"kubernetes.io/metadata.name": "team-a"})
    other = Pod("team-b", client_labels, {"kubernetes.io/metadata.name": "team-b"})
    policies, _ = _release(render, app_chart)
    assert not admits(policies, team, REDIS, 6379)
    policies, _ = _release(
        render,
        app_chart,
        "--set",
        "networkPolicy.clientNamespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=team-a",
    )
    assert admits(policies, team, REDIS, 6379) and admits(policies, team, RABBITMQ, 5672)
    assert not admits(policies, other, REDIS, 6379)
    outsider = Pod("team-a", {"app": "x"}, {"kubernetes.io/metadata.name": "team-a"})
    assert not admits(policies, outsider, REDIS, 6379)


def test_the_sub_charts_own_policies_are_off_because_policies_add_up(
    render: Render, app_chart: Path
) -> None:
    values = yaml.safe_load((APP_CHART / "values.yaml").read_text())
    assert values["redis"]["networkPolicy"]["enabled"] is False
    assert values["rabbitmq"]["networkPolicy"]["enabled"] is False
    # Why: one allow-all policy on the same pods (what the sub-charts ship by default)
    # undoes the chart's isolation.
    policies, _ = _release(render, app_chart)
    allow_all = {
        "kind": "NetworkPolicy",
        "metadata": {"name": "redis", "namespace": NAMESPACE},
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "redis"}},
            "ingress": [{}],
        },
    }
    assert admits([*policies, allow_all], INTRUDER, REDIS, 6379)


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({}, {}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, {"a": "1"}, True),
        (
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]},
            {"a": "1"},
            False,
        ),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {}, False),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {}, True),
    ],
)
def test_selector_semantics(
    selector: dict[str, Any], labels: dict[str, str], expected: bool
) -> None:
    from tests.charts.network_policy import selects

    assert selects(selector, labels) is expected
