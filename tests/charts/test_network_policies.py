"""Isolation that holds, judged by NetworkPolicy semantics over the whole rendered release:
only recsys's own clients reach the bundled Valkey and RabbitMQ, from this namespace or the
namespaces the release names, and no other policy of the release selects the servers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.charts.conftest import Render
from tests.charts.network_policy import Pod, admits, selects

NAMESPACE = "shop"
INTRUDER = Pod(NAMESPACE, {"app": "something-else"})


def _pods(objs: list[dict[str, Any]]) -> dict[str, Pod]:
    """The release's own pods, by component, with the labels their templates give them: the
    services' Deployments and CronJob, and the bundled servers' StatefulSets (so a server's
    labels changing in its template, not in a test constant, is what the policies are judged
    against)."""
    pods: dict[str, Pod] = {}
    for obj in objs:
        spec = obj.get("spec", {})
        if obj["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        if obj["kind"] in {"Deployment", "CronJob", "StatefulSet"}:
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
    redis, rabbitmq = pods["redis"], pods["rabbitmq"]
    for component in ("api", "collector", "ingest"):
        assert admits(policies, pods[component], redis, 6379), component
    for component in ("collector", "ingest"):
        assert admits(policies, pods[component], rabbitmq, 5672), component
    assert admits(policies, pods["train"], redis, 6379)
    assert not admits(policies, pods["train"], rabbitmq, 5672)  # training never publishes
    for target, port in ((redis, 6379), (rabbitmq, 5672)):
        assert not admits(policies, INTRUDER, target, port)
        # A pod wearing the client label but not part of recsys is still refused.
        impostor = Pod(
            NAMESPACE, {"recsys.io/redis-client": "true", "recsys.io/amqp-client": "true"}
        )
        assert not admits(policies, impostor, target, port)
        # Nor do the servers reach each other: neither is a client.
        other = rabbitmq if target is redis else redis
        assert not admits(policies, other, target, port)
    assert not admits(policies, pods["api"], redis, 9999)  # only the server's ports
    assert not admits(policies, pods["api"], redis, 26379)  # no sentinel any more


def test_clients_in_other_namespaces_only_when_named(render: Render, app_chart: Path) -> None:
    client_labels = {
        "app.kubernetes.io/part-of": "recsys",
        "recsys.io/redis-client": "true",
        "recsys.io/amqp-client": "true",
    }
    team = Pod("team-a", client_labels, {"kubernetes.io/metadata.name": "team-a"})
    other = Pod("team-b", client_labels, {"kubernetes.io/metadata.name": "team-b"})
    policies, pods = _release(render, app_chart)
    redis, rabbitmq = pods["redis"], pods["rabbitmq"]
    assert not admits(policies, team, redis, 6379)
    policies, _ = _release(
        render,
        app_chart,
        "--set",
        "networkPolicy.clientNamespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=team-a",
    )
    assert admits(policies, team, redis, 6379) and admits(policies, team, rabbitmq, 5672)
    assert not admits(policies, other, redis, 6379)
    outsider = Pod("team-a", {"app": "x"}, {"kubernetes.io/metadata.name": "team-a"})
    assert not admits(policies, outsider, redis, 6379)


def test_each_server_is_selected_by_its_own_policy_only(render: Render, app_chart: Path) -> None:
    """Policies add up: any second policy selecting a server (the Bitnami sub-charts shipped an
    allow-all one) would widen what its own policy allows. The release now has exactly one per
    server, and the services' policy (ports 5000/5001/9100 from anywhere) selects neither."""
    policies, pods = _release(render, app_chart)
    for component in ("redis", "rabbitmq"):
        selecting = [
            p["metadata"]["name"]
            for p in policies
            if selects(p["spec"]["podSelector"], pods[component].labels)
        ]
        assert selecting == [f"recsys-{component}"], (component, selecting)
    # Why it matters: one allow-all policy on the same pods undoes the isolation.
    allow_all = {
        "kind": "NetworkPolicy",
        "metadata": {"name": "wide", "namespace": NAMESPACE},
        "spec": {"podSelector": {}, "ingress": [{}]},
    }
    assert admits([*policies, allow_all], INTRUDER, pods["redis"], 6379)


def test_the_cluster_operators_rabbitmq_pods_are_isolated_too(
    render: Render, app_chart: Path
) -> None:
    """With rabbitmq.clusterOperator.enabled the broker's pods are the RabbitMQ Cluster
    Operator's, labelled by it (name=<RabbitmqCluster name>, component=rabbitmq): the policy
    selects those, and only the amqp clients reach them."""
    policies, pods = _release(
        render,
        app_chart,
        "--set",
        "rabbitmq.clusterOperator.enabled=true",
        "--api-versions",
        "rabbitmq.com/v1beta1/RabbitmqCluster",
    )
    assert "rabbitmq" not in pods  # no StatefulSet of the chart's own
    broker = Pod(
        NAMESPACE,
        {
            "app.kubernetes.io/name": "recsys-rabbitmq",
            "app.kubernetes.io/component": "rabbitmq",
            "app.kubernetes.io/part-of": "rabbitmq",
        },
    )
    assert admits(policies, pods["collector"], broker, 5672)
    assert not admits(policies, pods["train"], broker, 5672)
    assert not admits(policies, INTRUDER, broker, 5672)


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
    assert selects(selector, labels) is expected
