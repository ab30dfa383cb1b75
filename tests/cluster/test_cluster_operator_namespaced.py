"""The operator chart with ``operator.watchNamespaces``: Roles in the watched namespaces.

A second release (its own ServiceAccount) runs the operator for one namespace only, after the
cluster-wide operator of ``test_cluster_operator.py`` has stopped (two operators would
reconcile the same RecSystems). One scenario exercises every namespaced grant; the audit
log then proves the Roles and the cluster-scoped remainder necessary and sufficient.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from recsys_operator import constants as c

from tests.charts.conftest import OPERATOR_CHART
from tests.cluster.conftest import Helm, Kubectl
from tests.cluster.controlplane import ControlPlane, kubeconfig
from tests.cluster.test_cluster_operator import (
    NOT_REQUESTED,
    OPERATOR_NS,
    OperatorProcess,
    _current,
    children,
    conditions,
    connection_secret,
    eventually,
    fake_node,  # noqa: F401 (fixture)
    granted,
    recsystem,
    run_pod_as_kubelet,
    same_children,
    used,
)

RELEASE = "nsops"
SERVICE_ACCOUNT = f"{RELEASE}-recsys-operator"
WATCHED = f"t-watched-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def watched(kubectl: Kubectl) -> Iterator[str]:
    """The one namespace the operator serves (it must exist before the chart's Role)."""
    kubectl.run("create", "namespace", WATCHED)
    yield WATCHED
    kubectl.run("delete", "recsystems", "--all", "-n", WATCHED, "--timeout=60s", check=False)
    kubectl.run("delete", "namespace", WATCHED, "--wait=false", check=False)


@pytest.fixture(scope="module")
def namespaced_operator(
    control_plane: ControlPlane,
    kubectl: Kubectl,
    helm_cli: Helm,
    crd: None,
    monitoring_crds: None,
    watched: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    helm_cli.run(
        "install", RELEASE, str(OPERATOR_CHART), "-n", OPERATOR_NS, "--create-namespace",
        "--set", f"operator.watchNamespaces={{{watched}}}",
    )  # fmt: skip
    token = kubectl.run(
        "create", "token", SERVICE_ACCOUNT, "-n", OPERATOR_NS, "--duration=2h"
    ).stdout.strip()
    work = tmp_path_factory.mktemp("namespaced-operator")
    config = work / "sa.kubeconfig"
    config.write_text(
        kubeconfig(control_plane.server, control_plane.pki / "ca.crt", {"token": token})
    )
    process = OperatorProcess(config, work / "operator.log", namespaces=watched)
    _current.append(process)
    try:
        yield process
    finally:
        code = process.stop()
        _current.remove(process)
        helm_cli.run("uninstall", RELEASE, "-n", OPERATOR_NS, check=False)
        assert code == 0, f"operator exit code {code}:\n{process.output()[-4000:]}"


def can(kubectl: Kubectl, verb: str, resource: str, *where: str) -> bool:
    """``kubectl auth can-i`` as the release's ServiceAccount (admin impersonates it)."""
    user = f"system:serviceaccount:{OPERATOR_NS}:{SERVICE_ACCOUNT}"
    result = kubectl.run("auth", "can-i", verb, resource, *where, f"--as={user}", check=False)
    return result.stdout.strip() == "yes"


def test_the_service_account_is_confined_to_the_watched_namespace(
    namespaced_operator: OperatorProcess, kubectl: Kubectl, watched: str
) -> None:
    assert can(kubectl, "create", "deployments", "-n", watched)
    assert not can(kubectl, "create", "deployments", "-n", "default")
    assert not can(kubectl, "list", "recsystems.recsys.io", "--all-namespaces")
    # No Secret can be read anywhere; creating one is all it may do, where it works.
    for where in (("-n", watched), ("-n", "default"), ("--all-namespaces",)):
        assert not can(kubectl, "get", "secrets", *where), where
        assert not can(kubectl, "list", "secrets", *where), where
    assert can(kubectl, "create", "secrets", "-n", watched)


def test_an_instance_in_the_watched_namespace_goes_through_its_whole_life(
    namespaced_operator: OperatorProcess,
    kubectl: Kubectl,
    watched: str,
    fake_node: str,  # noqa: F811
) -> None:
    """Every namespaced grant in use: children with every feature, a CronJob, features
    switched off (deletes), operator-launched Jobs (Replace deletes one), a finished training
    pod read back, the claim's owner reference switched, and garbage collection."""
    kubectl.apply(
        [
            connection_secret(watched),
            recsystem("w", watched, training={"schedule": "0 0 * * *"}),
        ]
    )
    eventually(lambda: same_children(kubectl, "w", watched), timeout=90, what="children")
    eventually(lambda: kubectl.get("cronjob", "w-train", watched), timeout=60, what="CronJob")
    off = {
        "spec": {
            "ingress": {"enabled": False},
            "networkPolicy": {"enabled": False},
            "monitoring": {
                "serviceMonitor": {"enabled": False},
                "prometheusRule": {"enabled": False},
            },
            "api": {"autoscaling": {"enabled": False}, "podDisruptionBudget": {"enabled": False}},
            "collector": {
                "autoscaling": {"enabled": False},
                "podDisruptionBudget": {"enabled": False},
            },
            "training": {"schedule": None, "intervalSeconds": 5, "concurrencyPolicy": "Replace"},
            "storage": {"retainPolicy": "Delete"},
        }
    }
    kubectl.run("patch", "recsystem", "w", "-n", watched, "--type=merge", "-p", json.dumps(off))

    def switched_off() -> bool:
        left = children(kubectl, "w", watched)
        for kind in ("horizontalpodautoscalers", "poddisruptionbudgets", "ingresses",
                     "networkpolicies", "servicemonitors", "prometheusrules"):  # fmt: skip
            assert not left[kind], f"{kind} still there: {left[kind]}"
        assert kubectl.get("cronjob", "w-train", watched) is None, "CronJob still there"
        pvc = kubectl.get("persistentvolumeclaim", "w-data", watched) or {}
        assert pvc["metadata"].get("ownerReferences"), "claim not owned yet"
        return True

    eventually(switched_off, timeout=90, what="features off, claim owned")
    first = eventually(
        lambda: kubectl.items("jobs", watched), timeout=60, what="an operator-launched Job"
    )[0]["metadata"]["name"]
    eventually(
        lambda: kubectl.get("job", first, watched) is None,
        timeout=60,
        what=f"Replace to delete the active Job {first}",
    )
    # Stop launching (Forbid keeps the running Job), then finish one run as kubelet.
    forbid = {"spec": {"training": {"concurrencyPolicy": "Forbid"}}}
    kubectl.run("patch", "recsystem", "w", "-n", watched, "--type=merge", "-p", json.dumps(forbid))

    def live_training_pods() -> list[dict[str, Any]]:
        # Not one of a Job that Replace deleted (its Pod may linger until collected).
        return [
            p
            for p in kubectl.items("pods", watched, c.LABEL_JOB_NAME)
            if not p["metadata"].get("deletionTimestamp")
            and kubectl.get("job", p["metadata"]["labels"][c.LABEL_JOB_NAME], watched)
        ]

    pods = eventually(live_training_pods, timeout=90, what="a training Pod of a live Job")
    run_pod_as_kubelet(kubectl, watched, pods[0]["metadata"]["name"], fake_node, 1, "boom")

    def training_failed() -> bool:
        obj = kubectl.get("recsystem", "w", watched) or {}
        training = conditions(obj).get(c.COND_TRAINING) or {}
        assert training.get("reason") == "JobFailed", f"TrainingSucceeded: {training}"
        return True

    eventually(training_failed, timeout=90, what="the finished pod read back")
    kubectl.run("delete", "recsystem", "w", "-n", watched, "--timeout=60s")
    eventually(
        lambda: not any(children(kubectl, "w", watched).values()),
        timeout=120,
        what="children (and the claim) collected",
    )


def test_a_recsystem_outside_the_watched_namespace_is_left_alone(
    namespaced_operator: OperatorProcess, kubectl: Kubectl, namespace: str, watched: str
) -> None:
    """It could not act there anyway; it must not even try (the audit test: nothing denied)."""
    kubectl.apply([connection_secret(namespace), recsystem("elsewhere", namespace)])
    kubectl.apply([connection_secret(watched), recsystem("here", watched)])
    eventually(lambda: same_children(kubectl, "here", watched), timeout=90, what="children")
    time.sleep(3)  # the other namespace's RecSystem has had as long, and more
    assert not any(children(kubectl, "elsewhere", namespace).values())
    assert not (kubectl.get("recsystem", "elsewhere", namespace) or {}).get("status")


def test_rbac_in_watch_namespaces_mode_is_exactly_what_the_operator_used(
    namespaced_operator: OperatorProcess, helm_cli: Helm, control_plane: ControlPlane, watched: str
) -> None:
    """The Roles plus the cluster-scoped remainder: nothing denied, every grant used."""
    seen, denied = used(control_plane.audit_log, SERVICE_ACCOUNT)
    assert not denied, denied
    values = ("--set", f"operator.watchNamespaces={{{watched}}}")
    unused = granted(helm_cli, RELEASE, *values) - seen - NOT_REQUESTED
    assert not unused, f"granted but never used: {sorted(unused)}"
    namespaced_operator.alive()
