"""helm lint/template of every chart and values file; every object schema-checked and
held to the policies below."""

from __future__ import annotations

import base64
import json
import re
import warnings
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import SchemaNotFoundError

from tests.charts.conftest import (
    OPERATOR_CHART,
    ROOT,
    VALUES_FILES,
    Render,
    monitoring_args,
    run,
)

K8S_VERSION = "1.35.0"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}
LONG_RUNNING = {"Deployment", "StatefulSet", "DaemonSet"}
SECRET_NAME = re.compile(r"(PASSWORD|TOKEN|SECRET|_URL|API_KEY|PRIVATE_KEY)$")


@pytest.fixture(scope="module", params=VALUES_FILES, ids=lambda p: p.stem)
def rendered(
    request: pytest.FixtureRequest, render: Render, app_chart: Path
) -> list[dict[str, Any]]:
    return render(app_chart, "-f", str(request.param), *monitoring_args())


@pytest.fixture(scope="module")
def operator_rendered(render: Render) -> list[dict[str, Any]]:
    return render(OPERATOR_CHART, release="ops", namespace="recsys-system")


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    if obj["kind"] == "Pod":
        return dict(obj["spec"])
    if obj["kind"] == "CronJob":
        return dict(obj["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return dict(obj["spec"]["template"]["spec"])


def workloads(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] in WORKLOAD_KINDS]


def all_rendered(render: Render, app_chart: Path) -> list[list[dict[str, Any]]]:
    return [render(app_chart, "-f", str(f), *monitoring_args()) for f in VALUES_FILES]


# --- lint and schema -------------------------------------------------------------------------


@pytest.mark.parametrize("values", VALUES_FILES, ids=lambda p: p.stem)
def test_app_chart_lints_strict(helm: str, app_chart: Path, values: Path) -> None:
    run([helm, "lint", "--strict", str(app_chart), "-f", str(values)])


def test_operator_chart_lints_strict(helm: str) -> None:
    run([helm, "lint", "--strict", str(OPERATOR_CHART)])


def _validate(objs: list[dict[str, Any]]) -> None:
    for obj in objs:
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except SchemaNotFoundError:
            # Custom kinds (ServiceMonitor, PrometheusRule, CRD instances) have no bundled schema.
            warnings.warn(f"no schema for {obj['apiVersion']}/{obj['kind']}", stacklevel=1)


def test_every_app_object_is_valid_kubernetes(rendered: list[dict[str, Any]]) -> None:
    assert rendered
    _validate(rendered)


def test_every_operator_object_is_valid_kubernetes(operator_rendered: list[dict[str, Any]]) -> None:
    kinds = {o["kind"] for o in operator_rendered}
    assert {
        "Deployment",
        "ClusterRole",
        "ClusterRoleBinding",
        "ServiceAccount",
    } <= kinds
    _validate(operator_rendered)


def test_closed_values_schema_rejects_unknown_keys(helm: str, app_chart: Path) -> None:
    result = run(
        [helm, "template", "r", str(app_chart), "--set", "apii.replicaCount=3"], check=False
    )
    assert result.returncode != 0
    assert "apii" in result.stderr


def test_schema_rejects_bad_enum(helm: str, app_chart: Path) -> None:
    result = run([helm, "template", "r", str(app_chart), "--set", "config.model=svd"], check=False)
    assert result.returncode != 0 and "model" in result.stderr


def test_external_services_need_secrets(helm: str, app_chart: Path) -> None:
    result = run(
        [
            helm,
            "template",
            "r",
            str(app_chart),
            "--set",
            "redis.enabled=false",
            "--set",
            "rabbitmq.enabled=false",
        ],
        check=False,
    )
    assert result.returncode != 0
    assert "externalRedis.existingSecret" in result.stderr
    assert "externalRabbitmq.existingSecret" in result.stderr


# --- policies ----------------------------------------------------------------------------------


def test_pods_run_hardened(rendered: list[dict[str, Any]]) -> None:
    for obj in workloads(rendered):
        spec = pod_spec(obj)
        psc = spec.get("securityContext", {})
        assert psc.get("runAsNonRoot") is True, obj["metadata"]["name"]
        assert psc.get("seccompProfile") == {"type": "RuntimeDefault"}, obj["metadata"]["name"]
        for container in spec["containers"] + spec.get("initContainers", []):
            sc = container.get("securityContext", {})
            where = f"{obj['kind']}/{obj['metadata']['name']}/{container['name']}"
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert "ALL" in sc.get("capabilities", {}).get("drop", []), where
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(kind, {})), f"{where} {kind}"


def test_long_running_containers_have_probes(rendered: list[dict[str, Any]]) -> None:
    for obj in rendered:
        if obj["kind"] in LONG_RUNNING:
            for container in pod_spec(obj)["containers"]:
                where = f"{obj['metadata']['name']}/{container['name']}"
                assert "livenessProbe" in container, where
                assert "readinessProbe" in container, where


def test_every_object_has_recommended_labels(rendered: list[dict[str, Any]]) -> None:
    for obj in rendered:
        labels = obj["metadata"].get("labels", {})
        for key in (
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/managed-by",
            "app.kubernetes.io/part-of",
            "app.kubernetes.io/component",
            "helm.sh/chart",
        ):
            assert key in labels, f"{obj['kind']}/{obj['metadata']['name']} lacks {key}"


def test_no_plain_text_secrets_in_env_or_configmaps(rendered: list[dict[str, Any]]) -> None:
    for obj in workloads(rendered):
        for container in pod_spec(obj)["containers"]:
            for env in container.get("env", []):
                if SECRET_NAME.search(env["name"]) and env["name"] != "RECSYS_TERMINATION_LOG":
                    assert "valueFrom" in env and "secretKeyRef" in env["valueFrom"], env
                # A URL with credentials in plain text (RABBITMQ_NODENAME's rabbit@host is none).
                assert not re.search(r"://[^/\s]*:[^/\s]*@", str(env.get("value", ""))), env
    for obj in rendered:
        if obj["kind"] == "ConfigMap" and "grafana_dashboard" not in obj["metadata"]["labels"]:
            for key, value in obj.get("data", {}).items():
                assert not SECRET_NAME.search(key), key
                assert not re.search(r"://[^/\s]*:[^/\s]*@", str(value)), key


def test_ingress_routes_interact_to_collector(rendered: list[dict[str, Any]]) -> None:
    for ingress in (o for o in rendered if o["kind"] == "Ingress"):
        paths = {
            p["path"]: p["backend"]["service"]["name"]
            for p in ingress["spec"]["rules"][0]["http"]["paths"]
        }
        assert paths["/interact"].endswith("-collector")
        assert paths["/"].endswith("-api")


def test_checksum_annotations_roll_pods(rendered: list[dict[str, Any]]) -> None:
    for obj in rendered:
        if obj["kind"] == "Deployment":
            annotations = obj["spec"]["template"]["metadata"]["annotations"]
            assert re.fullmatch(r"[0-9a-f]{64}", annotations["checksum/config"])


def test_helm_test_hook_calls_healthcheck_and_recs(rendered: list[dict[str, Any]]) -> None:
    [pod] = [o for o in rendered if o["kind"] == "Pod"]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = pod["spec"]["containers"][0]["args"][0]
    assert "/healthcheck" in script and "/recs/" in script


# --- specific shapes ---------------------------------------------------------------------------


def _by(objs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def test_default_install_shape(render: Render, app_chart: Path) -> None:
    objs = render(app_chart)
    deployments = _by(objs, "Deployment")
    assert set(deployments) == {"recsys-api", "recsys-collector", "recsys-ingest"}
    ingest = deployments["recsys-ingest"]["spec"]
    assert ingest["replicas"] == 1 and ingest["strategy"] == {"type": "Recreate"}
    assert "replicas" not in deployments["recsys-api"]["spec"]  # HPA owns it
    assert set(_by(objs, "HorizontalPodAutoscaler")) == {"recsys-api", "recsys-collector"}
    cron = _by(objs, "CronJob")["recsys-train"]["spec"]
    assert cron["concurrencyPolicy"] == "Forbid"
    job_pod = cron["jobTemplate"]["spec"]["template"]["spec"]
    assert "podAffinity" in job_pod["affinity"]
    assert job_pod["containers"][0]["args"] == ["train", "--once"]
    config = _by(objs, "ConfigMap")["recsys-config"]["data"]
    assert config["RECSYS_KEY_PREFIX"] == "recsys:shop.recsys:"
    assert config["RECSYS_QUEUE"] == "user_interactions.shop.recsys"
    # Without the Prometheus Operator API, no ServiceMonitor even if asked for.
    assert not _by(objs, "ServiceMonitor")
    objs = render(app_chart, "--set", "monitoring.serviceMonitor.enabled=true")
    assert not _by(objs, "ServiceMonitor")
    policies = _by(objs, "NetworkPolicy")
    rabbit = policies["recsys-rabbitmq"]["spec"]["ingress"][0]["from"][0]["podSelector"]
    assert rabbit["matchLabels"]["recsys.io/amqp-client"] == "true"
    train_labels = cron["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert "recsys.io/amqp-client" not in train_labels  # training never talks to RabbitMQ
    assert train_labels["recsys.io/redis-client"] == "true"


def test_external_services_use_existing_secrets(render: Render, app_chart: Path) -> None:
    objs = render(app_chart, "-f", str(app_chart / "ci" / "external-services-values.yaml"))
    assert not [o for o in objs if o["kind"] == "Secret"]  # nothing generated
    env = {
        e["name"]: e
        for e in _by(objs, "Deployment")["recsys-api"]["spec"]["template"]["spec"]["containers"][0][
            "env"
        ]
    }
    assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "shared-redis", "key": "url"}
    assert env["AMQP_URL"]["valueFrom"]["secretKeyRef"] == {"name": "shared-rabbitmq", "key": "url"}
    assert env["RECSYS_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "recsys-admin"
    assert (
        "affinity"
        not in _by(objs, "CronJob")["recsys-train"]["spec"]["jobTemplate"]["spec"]["template"][
            "spec"
        ]
    )


def test_in_process_training_has_no_cronjob(render: Render, app_chart: Path) -> None:
    objs = render(app_chart, "-f", str(app_chart / "ci" / "in-process-values.yaml"))
    assert not _by(objs, "CronJob")
    ingest = _by(objs, "Deployment")["recsys-ingest"]["spec"]["template"]["spec"]["containers"][0]
    assert ingest["args"] == ["trainer"]
    assert _by(objs, "ConfigMap")["recsys-config"]["data"]["RECSYS_TRAIN_INTERVAL"] == "15"


def test_monitoring_objects_and_dashboard(render: Render, app_chart: Path) -> None:
    objs = render(
        app_chart, "-f", str(app_chart / "ci" / "monitoring-values.yaml"), *monitoring_args()
    )
    monitor = _by(objs, "ServiceMonitor")["recsys"]
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert {e["port"] for e in monitor["spec"]["endpoints"]} == {"http", "metrics"}
    rules = _by(objs, "PrometheusRule")["recsys"]["spec"]["groups"][0]["rules"]
    alerts = {r["alert"]: r for r in rules}
    assert set(alerts) == {"RecsysHighErrorRate", "RecsysHighLatency", "RecsysModelStale"}
    assert "> 180" in alerts["RecsysModelStale"]["expr"]  # 3 missed one-minute runs
    dashboard_cm = _by(objs, "ConfigMap")["recsys-dashboard"]
    assert dashboard_cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(dashboard_cm["data"]["recsys.json"])
    titles = " | ".join(p["title"] for p in dashboard["panels"]).lower()
    for needle in (
        "request rate",
        "latency",
        "error rate",
        "events ingested",
        "queue depth",
        "training runs",
        "training duration",
        "holdout",
        "recommendation sources",
    ):
        assert needle in titles
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in (
        "recsys_http_requests_total",
        "recsys_http_request_duration_seconds_bucket",
        "recsys_events_consumed_total",
        "recsys_queue_depth",
        "recsys_training_runs_total",
        "recsys_training_duration_seconds_bucket",
        "recsys_model_holdout",
        "recsys_recommendations_total",
    ):
        assert metric in exprs


# --- operator chart ----------------------------------------------------------------------------


def test_operator_rbac_is_least_privilege(operator_rendered: list[dict[str, Any]]) -> None:
    [role] = [o for o in operator_rendered if o["kind"] == "ClusterRole"]
    granted: dict[str, set[str]] = {}
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"]
        assert "*" not in rule["apiGroups"]
        for resource in rule["resources"]:
            granted.setdefault(resource, set()).update(rule["verbs"])
    assert granted["secrets"] == {"create"}  # never read a Secret (an existing one: 409)
    assert granted["pods"] == {"list"}
    assert granted["recsystems/status"] == {"patch"}
    # `update` only where the API server demands it: blockOwnerDeletion on children needs
    # update on the owner's finalizers (proven by tests/cluster/test_cluster_operator.py).
    assert granted["recsystems/finalizers"] == {"update"}
    assert "update" not in set().union(
        *(verbs for resource, verbs in granted.items() if resource != "recsystems/finalizers")
    )
    assert not {"clusterroles", "roles", "rolebindings", "nodes"} & set(granted)


def test_operator_rbac_is_namespaced_when_watching_namespaces(render: Render) -> None:
    """With watchNamespaces, a Role per namespace; the ClusterRole keeps only what is
    cluster-scoped (the CRD, namespace names)."""
    objs = render(
        OPERATOR_CHART, "--set", "operator.watchNamespaces={shop,books}", release="ops",
        namespace="recsys-system",
    )  # fmt: skip
    [cluster_role] = [o for o in objs if o["kind"] == "ClusterRole"]
    cluster_wide = {r for rule in cluster_role["rules"] for r in rule["resources"]}
    assert cluster_wide == {"customresourcedefinitions", "namespaces"}
    roles = {o["metadata"]["namespace"]: o for o in objs if o["kind"] == "Role"}
    bindings = {o["metadata"]["namespace"]: o for o in objs if o["kind"] == "RoleBinding"}
    assert set(roles) == set(bindings) == {"shop", "books"}
    for namespace, binding in bindings.items():
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
            "name": roles[namespace]["metadata"]["name"],
        }  # fmt: skip
        assert binding["subjects"][0]["namespace"] == "recsys-system"
    [everywhere] = [o for o in render(OPERATOR_CHART) if o["kind"] == "ClusterRole"]
    assert roles["shop"]["rules"] == everywhere["rules"][1:]  # the same namespaced rules


def test_operator_service_monitor_is_optional_and_selects_the_metrics_port(
    render: Render, operator_rendered: list[dict[str, Any]]
) -> None:
    """Off by default; on, the ServiceMonitor selects the metrics Service, whose port reaches
    the container's metrics port (what the operator serves /metrics on)."""
    assert not {"ServiceMonitor", "Service"} & {o["kind"] for o in operator_rendered}
    objs = render(
        OPERATOR_CHART, "--set", "monitoring.serviceMonitor.enabled=true",
        "--set", "monitoring.serviceMonitor.labels.release=kps", *monitoring_args(),
        release="ops", namespace="recsys-system",
    )  # fmt: skip
    [monitor] = [o for o in objs if o["kind"] == "ServiceMonitor"]
    [service] = [o for o in objs if o["kind"] == "Service"]
    [dep] = [o for o in objs if o["kind"] == "Deployment"]
    assert monitor["metadata"]["labels"]["release"] == "kps"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["recsys-system"]}
    [endpoint] = monitor["spec"]["endpoints"]
    [port] = service["spec"]["ports"]
    assert endpoint["port"] == port["name"] and endpoint["path"] == "/metrics"
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    container = dep["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert port["targetPort"] in ports
    assert str(ports[port["targetPort"]]) == env["RECSYS_OPERATOR_METRICS_PORT"]
    # Without the Prometheus Operator's CRDs: the Service only (and a warning in NOTES).
    bare = render(OPERATOR_CHART, "--set", "monitoring.serviceMonitor.enabled=true")
    assert "ServiceMonitor" not in {o["kind"] for o in bare}


def test_operator_deployment_probes_healthz(operator_rendered: list[dict[str, Any]]) -> None:
    [dep] = [o for o in operator_rendered if o["kind"] == "Deployment"]
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["RECSYS_OPERATOR_DEFAULT_IMAGE"]


def test_services_log_json_lines_in_the_cluster(render: Render, app_chart: Path) -> None:
    """Log collectors read one JSON object per line; text stays a value away."""
    from services.common.settings import Settings

    config = _by(render(app_chart), "ConfigMap")["recsys-config"]["data"]
    assert config["RECSYS_LOG_FORMAT"] == "json"
    assert Settings(log_format=config["RECSYS_LOG_FORMAT"]).log_format == "json"
    # Behind the one Ingress host the demo page's collector is its own origin.
    assert config["RECSYS_DEMO_COLLECTOR_ADDRESS"] == "/"
    text = _by(render(app_chart, "--set", "config.logFormat=text"), "ConfigMap")
    assert text["recsys-config"]["data"]["RECSYS_LOG_FORMAT"] == "text"


def test_credentials_survive_uninstall_and_fixed_ones_render_the_same(
    render: Render, app_chart: Path
) -> None:
    """The servers' volumes outlive a release: their passwords must too (kept Secrets, found
    again by lookup); fixed credentials (Tilt, GitOps) render identically every time."""
    secrets = {o["metadata"]["name"]: o for o in render(app_chart) if o["kind"] == "Secret"}
    for name in ("recsys-redis", "recsys-rabbitmq", "recsys-admin"):
        assert secrets[name]["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    fixed = [
        "--set", "auth.adminToken=t", "--set", "redis.auth.password=p",
        "--set", "rabbitmq.auth.password=q",
    ]  # fmt: skip

    def rendered_secrets() -> list[dict[str, Any]]:
        return [o for o in render(app_chart, *fixed) if o["kind"] == "Secret"]

    first = rendered_secrets()
    assert first == rendered_secrets()
    data = {o["metadata"]["name"]: o["data"] for o in first}
    assert base64.b64decode(data["recsys-redis"]["redis-url"]).decode().startswith("redis://:p@")
    tiltfile = (ROOT / "Tiltfile").read_text()
    for value in ("auth.adminToken=", "redis.auth.password=", "rabbitmq.auth.password="):
        assert value in tiltfile


def test_the_crd_chart_holds_the_crd_as_a_template_kept_on_uninstall(
    helm: str, render: Render
) -> None:
    """Helm installs a chart's crds/ once and never upgrades them: the CRD is a template of
    its own chart (upgraded by `helm upgrade`), kept when that chart is uninstalled."""
    crds_chart = ROOT / "charts" / "recsys-crds"
    run([helm, "lint", "--strict", str(crds_chart)])
    [crd] = render(crds_chart, release="recsys-crds", namespace="recsys-system")
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert crd == yaml.safe_load((ROOT / "manifests" / "crd.yaml").read_text())
    for chart in (OPERATOR_CHART, ROOT / "charts" / "recsys"):
        assert not (chart / "crds").exists(), chart
    _validate([crd])
