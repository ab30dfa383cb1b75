"""Pure builders: spec in, objects out."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
from recsys_operator import constants as c
from recsys_operator.builders import Instance, build_plan
from recsys_operator.builders.secret import build_admin_secret
from recsys_operator.builders.storage import data_pvc_owner_references
from recsys_operator.builders.trainer import (
    build_cronjob,
    build_job,
    interval_to_cron,
    nominal_interval_seconds,
)
from recsys_operator.validation import validate

BASE: dict[str, Any] = {
    "redis": {"secretRef": {"name": "redis"}},
    "amqp": {"secretRef": {"name": "amqp", "key": "uri"}},
}


def make(name: str = "demo", **spec: Any) -> Instance:
    parsed = validate(name, {**BASE, **spec})
    return Instance(name=name, namespace="ns", uid="uid-1", spec=parsed, image="img:1")


def by_kind(objs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objs}


FULL: dict[str, Any] = {
    "ingress": {
        "enabled": True,
        "host": "recs.example.com",
        "className": "nginx",
        "tlsSecretName": "tls",
    },
    "monitoring": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "kps"}},
        "prometheusRule": {"enabled": True},
    },
    "training": {"schedule": "*/15 * * * *"},
    "storage": {"storageClassName": "standard", "size": "5Gi"},
}


def test_every_builtin_object_is_valid_for_kubernetes_1_35() -> None:
    plan = build_plan(make(**FULL))
    objs = [*plan.apply, plan.data_pvc, build_admin_secret(make(), "t")]
    for obj in objs:
        if obj["apiVersion"].startswith("monitoring.coreos.com"):
            continue
        kubernetes_validate.validate(obj, "1.35.0", strict=True)


def test_children_are_owned_and_labelled() -> None:
    plan = build_plan(make(**{**FULL, "storage": {**FULL["storage"], "retainPolicy": "Delete"}}))
    for obj in [*plan.apply, plan.data_pvc]:
        meta = obj["metadata"]
        assert meta["namespace"] == "ns"
        assert meta["ownerReferences"][0]["uid"] == "uid-1"
        assert meta["ownerReferences"][0]["controller"] is True
        assert meta["labels"][c.LABEL_INSTANCE] == "demo"
        assert meta["labels"][c.LABEL_MANAGED_BY] == c.OPERATOR_NAME


def test_a_retained_data_claim_has_no_owner_reference() -> None:
    """Retain (the default): nothing for the garbage collector to follow to the claim."""
    pvc = build_plan(make()).data_pvc
    assert "ownerReferences" not in pvc["metadata"]
    assert pvc["metadata"]["labels"][c.LABEL_INSTANCE] == "demo"


def test_data_claim_owner_references_follow_the_policy_and_keep_foreign_ones() -> None:
    foreign = {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "u-x"}
    predecessor = {"apiVersion": c.API_VERSION, "kind": c.KIND, "name": "demo", "uid": "old"}
    retained = make(storage={"retainPolicy": "Retain"})
    assert data_pvc_owner_references(retained, [foreign, predecessor]) == [foreign]
    deleted = make(storage={"retainPolicy": "Delete"})
    refs = data_pvc_owner_references(deleted, [foreign, predecessor])
    assert refs[0] == foreign
    assert (refs[1]["uid"], refs[1]["controller"]) == ("uid-1", True)
    assert len(refs) == 2


def test_pods_are_hardened_and_have_probes_and_resources() -> None:
    inst = make(**FULL)
    plan = build_plan(inst)
    templates = [o["spec"]["template"] for o in plan.apply if o["kind"] == "Deployment"]
    templates.append(build_cronjob(inst)["spec"]["jobTemplate"]["spec"]["template"])  # type: ignore[index]
    for template in templates:
        pod = template["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"] == {"drop": ["ALL"]}
            assert container["resources"]["requests"] and container["resources"]["limits"]
            for env in container["env"]:
                assert "value" not in env or not env["name"].endswith(("URL", "TOKEN"))
    for obj in plan.apply:
        if obj["kind"] == "Deployment":
            container = obj["spec"]["template"]["spec"]["containers"][0]
            assert "livenessProbe" in container and "readinessProbe" in container


def test_ingest_is_a_single_recreate_writer_with_the_volume() -> None:
    objs = by_kind(build_plan(make()).apply)
    ingest = objs[("Deployment", "demo-ingest")]
    assert ingest["spec"]["replicas"] == 1
    assert ingest["spec"]["strategy"] == {"type": "Recreate"}
    volumes = ingest["spec"]["template"]["spec"]["volumes"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "demo-data"}} in volumes
    probe = ingest["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    assert probe["httpGet"] == {"path": "/metrics", "port": "metrics"}


def test_replicas_belong_to_the_hpa_when_autoscaling() -> None:
    objs = by_kind(build_plan(make()).apply)
    assert "replicas" not in objs[("Deployment", "demo-api")]["spec"]
    hpa = objs[("HorizontalPodAutoscaler", "demo-api")]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 5)
    plan = build_plan(make(api={"replicas": 3, "autoscaling": {"enabled": False}}))
    objs = by_kind(plan.apply)
    assert objs[("Deployment", "demo-api")]["spec"]["replicas"] == 3
    assert ("HorizontalPodAutoscaler", "demo-api") not in objs
    assert any(r.kind == "HorizontalPodAutoscaler" and r.name == "demo-api" for r in plan.absent)


def test_ingress_routes_interact_to_collector_and_the_rest_to_api() -> None:
    ingress = by_kind(build_plan(make(**FULL)).apply)[("Ingress", "demo")]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    paths = {
        p["path"]: p["backend"]["service"] for p in ingress["spec"]["rules"][0]["http"]["paths"]
    }
    assert paths["/interact"] == {"name": "demo-collector", "port": {"number": 5000}}
    assert paths["/"] == {"name": "demo-api", "port": {"number": 5001}}
    assert ingress["spec"]["tls"] == [{"hosts": ["recs.example.com"], "secretName": "tls"}]


def test_monitoring_objects_only_when_enabled() -> None:
    kinds = {o["kind"] for o in build_plan(make()).apply}
    assert not kinds & {"ServiceMonitor", "PrometheusRule"}
    objs = by_kind(build_plan(make(**FULL)).apply)
    monitor = objs[("ServiceMonitor", "demo")]
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert {e["port"] for e in monitor["spec"]["endpoints"]} == {"http", "metrics"}
    rules = objs[("PrometheusRule", "demo")]["spec"]["groups"][0]["rules"]
    alerts = {r["alert"]: r["expr"] for r in rules}
    assert set(alerts) == {"RecsysHighErrorRate", "RecsysHighLatency", "RecsysModelStale"}
    assert "> 4500" in alerts["RecsysModelStale"]  # 5 missed * 15 min schedule


def test_network_policy_admits_only_the_served_ports_to_every_pod() -> None:
    from tests.charts.network_policy import Pod, admits

    inst = make()
    plan = build_plan(inst)
    policies = [o for o in plan.apply if o["kind"] == "NetworkPolicy"]
    assert [p["metadata"]["name"] for p in policies] == ["demo-services"]
    templates = [o["spec"]["template"] for o in plan.apply if o["kind"] == "Deployment"]
    templates.append(build_cronjob(inst)["spec"]["jobTemplate"]["spec"]["template"])  # type: ignore[index]
    anyone = Pod("elsewhere", {"app": "x"})
    for template in templates:
        pod = Pod("ns", template["metadata"]["labels"])
        assert all(admits(policies, anyone, pod, port) for port in (5001, 5000, 9100, 5011, 5010))
        assert not admits(policies, anyone, pod, 6379), template["metadata"]["labels"]
    # Another instance's pods are not this policy's business.
    other = Pod("ns", {c.LABEL_NAME: c.APP_NAME, c.LABEL_INSTANCE: "other"})
    assert admits(policies, anyone, other, 6379)


def test_network_policy_switched_off_is_deleted() -> None:
    plan = build_plan(make(networkPolicy={"enabled": False}))
    assert "NetworkPolicy" not in {o["kind"] for o in plan.apply}
    assert any(r.kind == "NetworkPolicy" and r.name == "demo-services" for r in plan.absent)


@pytest.mark.parametrize(
    ("seconds", "cron"),
    [
        (30, None),
        (59, None),
        (60, "*/1 * * * *"),
        (300, "*/5 * * * *"),
        (7200, "0 */2 * * *"),
        (86400, "0 0 * * *"),
    ],
)
def test_interval_to_cron(seconds: int, cron: str | None) -> None:
    assert interval_to_cron(seconds) == cron


def test_interval_without_exact_cron_is_refused() -> None:
    with pytest.raises(ValueError, match="no exact cron"):
        interval_to_cron(90)


def test_cronjob_only_for_schedules_and_minute_intervals() -> None:
    # Sub-minute intervals: operator-launched Jobs.
    assert build_cronjob(make(training={"intervalSeconds": 30})) is None
    cronjob = build_cronjob(make(training={"intervalSeconds": 120, "suspend": True}))
    assert cronjob is not None
    assert cronjob["spec"]["schedule"] == "*/2 * * * *"
    assert cronjob["spec"]["suspend"] is True
    default = build_cronjob(make())  # every 15 minutes
    assert default is not None and default["spec"]["schedule"] == "*/15 * * * *"
    assert nominal_interval_seconds(make().spec.training) == 900


def test_job_carries_deadline_affinity_and_termination_log() -> None:
    from datetime import UTC, datetime

    job = build_job(make(), datetime(2026, 1, 1, tzinfo=UTC))
    assert job["metadata"]["name"] == "demo-train-1767225600"
    assert job["metadata"]["labels"][c.LABEL_TRIGGER] == "operator"
    spec = job["spec"]
    assert spec["activeDeadlineSeconds"] == 600 and spec["backoffLimit"] == 0
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert "podAffinity" in pod["affinity"]  # RWO volume: next to ingest
    container = pod["containers"][0]
    assert {"name": "RECSYS_TERMINATION_LOG", "value": "/dev/termination-log"} in container["env"]
    rwx = build_job(make(storage={"accessMode": "ReadWriteMany"}), datetime(2026, 1, 1, tzinfo=UTC))
    assert "affinity" not in rwx["spec"]["template"]["spec"]


def test_config_change_changes_the_pod_template_hash() -> None:
    def hash_of(inst: Instance) -> str:
        dep = by_kind(build_plan(inst).apply)[("Deployment", "demo-api")]
        return str(dep["spec"]["template"]["metadata"]["annotations"][c.ANNOTATION_CONFIG_HASH])

    assert hash_of(make()) == hash_of(make())
    assert hash_of(make()) != hash_of(make(model={"defaultK": 20}))


def test_instances_log_json_lines_and_serve_the_demo_through_the_ingress() -> None:
    from services.common.settings import Settings

    data = by_kind(build_plan(make()).apply)[("ConfigMap", "demo-config")]["data"]
    assert Settings(log_format=data["RECSYS_LOG_FORMAT"]).log_format == "json"
    assert data["RECSYS_DEMO_COLLECTOR_ADDRESS"] == "/"
