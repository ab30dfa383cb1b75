"""Both charts installed, upgraded and uninstalled by the real helm against the real server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.charts.conftest import OPERATOR_CHART, VALUES_FILES, monitoring_args
from tests.cluster.conftest import Helm, Kubectl


def release_status(helm: Helm, release: str, namespace: str) -> str:
    out = helm.run("status", release, "-n", namespace, "-o", "json").stdout
    status: str = json.loads(out)["info"]["status"]
    return status


@pytest.mark.parametrize("values", VALUES_FILES, ids=lambda p: p.stem)
def test_rendered_app_objects_pass_server_side_dry_run(
    helm_cli: Helm, kubectl: Kubectl, app_chart: Path, namespace: str, values: Path,
    monitoring_crds: None,
) -> None:  # fmt: skip
    rendered = helm_cli.run(
        "template", "recsys", str(app_chart), "-n", namespace, "-f", str(values),
        *monitoring_args(),
    ).stdout  # fmt: skip
    objs = [o for o in yaml.safe_load_all(rendered) if o]
    assert objs
    kubectl.run("create", "--dry-run=server", "-n", namespace, "-f", "-", stdin=rendered)


def test_rendered_operator_objects_pass_server_side_dry_run(
    helm_cli: Helm, kubectl: Kubectl, namespace: str
) -> None:
    rendered = helm_cli.run(
        "template", "ops", str(OPERATOR_CHART), "-n", namespace, "--include-crds"
    ).stdout
    # The CRD may already exist (other tests): dry-run `apply` accepts both cases.
    kubectl.run("apply", "--server-side", "--dry-run=server", "-n", namespace, "-f", "-",
                stdin=rendered)  # fmt: skip


def test_the_operator_chart_service_monitor_passes_server_side_dry_run(
    helm_cli: Helm, kubectl: Kubectl, namespace: str, monitoring_crds: None
) -> None:
    """Optional (off by default); on, rendered where the server serves ServiceMonitors (this
    session's CRD: the real schema's fields, types and required fields, nothing else), and
    accepted by it with strict field validation; `helm install` creates both objects."""
    # A release name of its own: its cluster-scoped RBAC objects collide with no other test's.
    args = ["opsmon", str(OPERATOR_CHART), "-n", namespace]
    monitor = ["--set", "monitoring.serviceMonitor.enabled=true"]
    default = [o for o in yaml.safe_load_all(helm_cli.run("template", *args).stdout) if o]
    assert "ServiceMonitor" not in {o["kind"] for o in default}
    rendered = helm_cli.run("template", *args, *monitor, *monitoring_args()).stdout
    kinds = {o["kind"] for o in yaml.safe_load_all(rendered) if o}
    assert {"ServiceMonitor", "Service"} <= kinds, kinds
    kubectl.run("create", "--dry-run=server", "--validate=strict", "-n", namespace, "-f", "-",
                stdin=rendered)  # fmt: skip
    # The stub is strict: a misspelt field is refused, so the dry-run above can fail.
    typo = rendered.replace("honorLabels", "honourLabels").replace("path: /metrics", "paht: /m")
    refused = kubectl.run("create", "--dry-run=server", "--validate=strict", "-n", namespace,
                          "-f", "-", stdin=typo, check=False)  # fmt: skip
    assert refused.returncode != 0 and "unknown field" in refused.stderr, refused.stderr
    helm_cli.run("install", *args, *monitor, "--timeout=2m")
    try:
        [created] = kubectl.items("servicemonitors", namespace)
        service = kubectl.get("service", "opsmon-recsys-operator-metrics", namespace)
        assert service is not None
        selector = created["spec"]["selector"]["matchLabels"]
        assert selector.items() <= service["metadata"]["labels"].items()
    finally:
        helm_cli.run("uninstall", "opsmon", "-n", namespace, "--wait", "--timeout=2m")


@pytest.mark.parametrize("values", VALUES_FILES, ids=lambda p: p.stem)
def test_app_chart_installs_upgrades_and_uninstalls(
    helm_cli: Helm, kubectl: Kubectl, app_chart: Path, namespace: str, values: Path,
    monitoring_crds: None,
) -> None:  # fmt: skip
    base = ["recsys", str(app_chart), "-n", namespace, "-f", str(values), "--timeout=2m"]
    helm_cli.run("install", *base)
    assert release_status(helm_cli, "recsys", namespace) == "deployed"
    deployments = kubectl.items("deployments", namespace, "app.kubernetes.io/instance=recsys")
    assert {d["metadata"]["name"].rsplit("-", 1)[-1] for d in deployments} >= {"api", "ingest"}
    config = yaml.safe_load(values.read_text()) or {}
    if (config.get("monitoring") or {}).get("serviceMonitor", {}).get("enabled"):
        # Rendered because the server now advertises monitoring.coreos.com/v1.
        assert kubectl.items("servicemonitors", namespace)
    secrets_before = {
        s["metadata"]["name"]: s.get("data") for s in kubectl.items("secrets", namespace)
    }

    helm_cli.run("upgrade", *base)
    assert release_status(helm_cli, "recsys", namespace) == "deployed"
    secrets_after = {
        s["metadata"]["name"]: s.get("data") for s in kubectl.items("secrets", namespace)
    }
    # Generated credentials survive an upgrade (the chart's `lookup` sees the live Secret).
    for name, data in secrets_before.items():
        if name.endswith("-admin"):
            assert secrets_after[name] == data, f"{name} was regenerated by the upgrade"

    helm_cli.run("uninstall", "recsys", "-n", namespace, "--wait", "--timeout=2m")
    assert not kubectl.items("deployments", namespace, "app.kubernetes.io/instance=recsys")


def test_operator_chart_installs_upgrades_and_uninstalls(
    helm_cli: Helm, kubectl: Kubectl, namespace: str, crd: None
) -> None:
    base = ["ops", str(OPERATOR_CHART), "-n", namespace, "--timeout=2m"]
    helm_cli.run("install", *base)
    assert release_status(helm_cli, "ops", namespace) == "deployed"
    assert kubectl.get("deployment", "ops-recsys-operator", namespace) is not None
    helm_cli.run("upgrade", *base, "--set", "operator.logLevel=DEBUG")
    deployment = kubectl.get("deployment", "ops-recsys-operator", namespace)
    assert deployment is not None
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "RECSYS_OPERATOR_LOG_LEVEL", "value": "DEBUG"} in env
    helm_cli.run("uninstall", "ops", "-n", namespace, "--wait", "--timeout=2m")
    assert kubectl.get("deployment", "ops-recsys-operator", namespace) is None
    # The operator chart holds no CRD (charts/recsys-crds does): the RecSystem API stays.
    assert kubectl.get("crd", "recsystems.recsys.io") is not None


def test_helm_upgrade_of_the_crd_chart_upgrades_the_crd(
    helm_cli: Helm, kubectl: Kubectl, namespace: str, crd: None, tmp_path: Path
) -> None:
    """The CRD chart's template is upgraded by `helm upgrade` (a chart's crds/ never is), and
    uninstalling the chart keeps the CRD, so no RecSystem of the cluster goes with it."""
    crds_chart = OPERATOR_CHART.parent / "recsys-crds"
    # An older release of the chart: one printer column less.
    older = tmp_path / "recsys-crds"
    shutil.copytree(crds_chart, older)
    template = older / "templates" / "recsystems.recsys.io.yaml"
    source = yaml.safe_load(template.read_text())
    columns = source["spec"]["versions"][0]["additionalPrinterColumns"]
    dropped = columns.pop()["name"]
    template.write_text(yaml.safe_dump(source, sort_keys=False))

    def served_columns() -> list[str]:
        found = kubectl.get("crd", "recsystems.recsys.io")
        assert found is not None
        return [c["name"] for c in found["spec"]["versions"][0]["additionalPrinterColumns"]]

    base = ["recsys-crds", "-n", namespace, "--timeout=2m"]
    # The session's CRD was applied by kubectl (as from manifests/crd.yaml): the chart adopts
    # it, and its fields, from that field manager.
    adopt = ["--take-ownership", "--force-conflicts"]
    helm_cli.run("install", base[0], str(older), *base[1:], *adopt)
    assert dropped not in served_columns()
    helm_cli.run("upgrade", base[0], str(crds_chart), *base[1:])
    assert dropped in served_columns()
    helm_cli.run("uninstall", "recsys-crds", "-n", namespace, "--wait", "--timeout=2m")
    assert kubectl.get("crd", "recsystems.recsys.io") is not None  # resource-policy: keep


def test_the_app_chart_creates_a_rabbitmqcluster_where_the_operator_api_is_served(
    helm_cli: Helm, kubectl: Kubectl, app_chart: Path, namespace: str
) -> None:
    """rabbitmq.clusterOperator.enabled: refused while the server does not serve
    RabbitmqCluster; once it does (a stub CRD with the real schema's subset for the fields the
    chart sets, strict), the object passes a strict server-side dry-run, `helm install` finds
    the API through the live discovery and creates it instead of the chart's StatefulSet, and
    the services read the URL from the operator's default-user Secret."""
    args = ["recsys", str(app_chart), "-n", namespace,
            "--set", "rabbitmq.clusterOperator.enabled=true", "--timeout=2m"]  # fmt: skip
    refused = helm_cli.run("install", *args, check=False)
    assert refused.returncode != 0 and "RabbitMQ Cluster Operator" in refused.stderr
    stub = Path(__file__).parent / "fixtures" / "rabbitmq-cluster-crd-stub.yaml"
    kubectl.run("apply", "--server-side", "-f", str(stub))
    try:
        kubectl.run("wait", "--for=condition=Established",
                    "crd/rabbitmqclusters.rabbitmq.com", "--timeout=60s")  # fmt: skip
        rendered = helm_cli.run(
            "template", *args[:-1], "--api-versions", "rabbitmq.com/v1beta1/RabbitmqCluster"
        ).stdout
        kubectl.run("create", "--dry-run=server", "--validate=strict", "-n", namespace,
                    "-f", "-", stdin=rendered)  # fmt: skip
        helm_cli.run("install", *args)
        [cluster] = kubectl.items("rabbitmqclusters", namespace)
        assert cluster["metadata"]["name"] == "recsys-rabbitmq"
        assert cluster["spec"]["image"].startswith("docker.io/library/rabbitmq:4.")
        assert kubectl.get("statefulset", "recsys-rabbitmq", namespace) is None
        assert kubectl.get("statefulset", "recsys-redis", namespace) is not None
        collector = kubectl.get("deployment", "recsys-collector", namespace)
        assert collector is not None
        env = {e["name"]: e for e in collector["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["AMQP_URL"]["valueFrom"]["secretKeyRef"] == {
            "name": "recsys-rabbitmq-default-user",
            "key": "connection_string",
        }
        helm_cli.run("uninstall", "recsys", "-n", namespace, "--wait", "--timeout=2m")
        assert not kubectl.items("rabbitmqclusters", namespace)
    finally:
        kubectl.run("delete", "-f", str(stub), "--wait=false", check=False)
