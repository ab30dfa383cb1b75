"""One topology, two sources: the app chart (charts/recsys/templates) and the operator's
builders (operator/recsys_operator/builders) must produce the same children for the same
settings.

For each scenario the chart is rendered (``helm template``, release ``shop``) and the operator's
children are built for a RecSystem ``shop`` with the same settings. Both sides are reduced to
the facts that decide how the instance runs, one flat path per fact:

* Deployments and the CronJob's pod: images, command, args, env, envFrom, ports, probes (with
  the API server's defaults filled in), resources, security contexts, volumes and mounts,
  affinity, pod labels and annotations, replicas, strategy, selector; the CronJob's schedule,
  suspend, concurrency, history limits and deadlines;
* Services' type, ports and selectors; the ConfigMap's data; Secrets' key names; the PVC;
  HPAs, PDBs and the Ingress spec;
* NetworkPolicies judged by their semantics (``tests/charts/network_policy.py``): who may
  open which port on every pod of the instance, and on the Redis and RabbitMQ the chart
  bundles, for the instance's own pods and strangers.

Any difference fails, unless ``DELIBERATE`` names it with its reason; an entry of
``DELIBERATE`` that no scenario needs fails too, so the list cannot go stale.

Every chart value is set in a scenario (so compared with its RecSystem counterpart) or named
in ``NOT_COMPARED`` with the reason: chart-only settings such as ``training.mode=inProcess``,
and ServiceMonitor/PrometheusRule, which ``test_alerts.py`` checks on both sides.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts.conftest import APP_CHART, OPERATOR_CHART, Render
from tests.charts.network_policy import Pod, admits, selects

NAME = NAMESPACE = "shop"
Obj = dict[str, Any]


@dataclass(frozen=True)
class Scenario:
    """The same settings, written once as chart values and once as a RecSystem spec."""

    values: Obj
    spec: Obj
    #: The RecSystem's spec.image; None: the operator's default (from its chart).
    image: str | None = None


SCENARIOS: dict[str, Scenario] = {
    # Both sides' defaults. The chart bundles Redis/RabbitMQ and enables its Ingress by
    # default; the RecSystem names the chart's connection Secrets and the same host.
    "defaults": Scenario(
        values={},
        spec={
            "redis": {"secretRef": {"name": "recsys-redis", "key": "redis-url"}},
            "amqp": {"secretRef": {"name": "recsys-rabbitmq", "key": "amqp-url"}},
            "ingress": {"enabled": True, "host": "recsys.localtest.me"},
        },
    ),
    # Every setting both sides have, away from its default.
    "given": Scenario(
        values={
            "image": {
                "repository": "registry.example.com/recsys",
                "tag": "1.2.3",
                "pullPolicy": "Always",
            },
            "redis": {"enabled": False},
            "rabbitmq": {"enabled": False},
            "externalRedis": {"existingSecret": "conn", "existingSecretKey": "redis"},
            "externalRabbitmq": {"existingSecret": "conn", "existingSecretKey": "amqp"},
            "auth": {"existingSecret": "admin", "existingSecretKey": "token"},
            "config": {
                "model": "lightfm",
                "defaultK": 25,
                "explorationRate": 0.15,
                "lightfm": {"components": 48, "epochs": 30, "learningRate": 0.03},
                "corsOrigins": "https://shop.example.com",
                "logLevel": "DEBUG",
            },
            "api": {
                "replicaCount": 3,
                "autoscaling": {"enabled": False},
                "pdb": {"enabled": True, "maxUnavailable": 2},
                "resources": {
                    "requests": {"cpu": "200m", "memory": "300Mi"},
                    "limits": {"cpu": "2", "memory": "2Gi"},
                },
            },
            "collector": {
                "autoscaling": {
                    "minReplicas": 3,
                    "maxReplicas": 8,
                    "targetCPUUtilizationPercentage": 60,
                },
                "pdb": {"enabled": False},
            },
            "ingest": {
                "resources": {
                    "requests": {"cpu": "100m", "memory": "256Mi"},
                    "limits": {"cpu": "1", "memory": "1Gi"},
                }
            },
            "training": {
                "schedule": "*/5 * * * *",
                "suspend": True,
                "concurrencyPolicy": "Replace",
                "successfulJobsHistoryLimit": 5,
                "failedJobsHistoryLimit": 2,
                "activeDeadlineSeconds": 1200,
                "backoffLimit": 2,
                "resources": {
                    "requests": {"cpu": "500m", "memory": "1Gi"},
                    "limits": {"cpu": "3", "memory": "3Gi"},
                },
            },
            "persistence": {"size": "5Gi", "storageClass": "nfs", "accessMode": "ReadWriteMany"},
            "ingress": {
                "enabled": True,
                "className": "nginx",
                "host": "recs.example.com",
                "tls": {"enabled": True, "secretName": "recs-tls"},
            },
            "networkPolicy": {"enabled": False},
        },
        spec={
            "imagePullPolicy": "Always",
            "redis": {"secretRef": {"name": "conn", "key": "redis"}},
            "amqp": {"secretRef": {"name": "conn", "key": "amqp"}},
            "adminToken": {"secretRef": {"name": "admin", "key": "token"}},
            "model": {
                "type": "lightfm",
                "defaultK": 25,
                "explorationRate": 0.15,
                "lightfm": {"components": 48, "epochs": 30, "learningRate": 0.03},
            },
            "corsOrigins": "https://shop.example.com",
            "logLevel": "DEBUG",
            "api": {
                "replicas": 3,
                "autoscaling": {"enabled": False},
                "podDisruptionBudget": {"maxUnavailable": 2},
                "resources": {
                    "requests": {"cpu": "200m", "memory": "300Mi"},
                    "limits": {"cpu": "2", "memory": "2Gi"},
                },
            },
            "collector": {
                "autoscaling": {
                    "minReplicas": 3,
                    "maxReplicas": 8,
                    "targetCPUUtilizationPercentage": 60,
                },
                "podDisruptionBudget": {"enabled": False},
            },
            "ingest": {
                "resources": {
                    "requests": {"cpu": "100m", "memory": "256Mi"},
                    "limits": {"cpu": "1", "memory": "1Gi"},
                }
            },
            "training": {
                "schedule": "*/5 * * * *",
                "suspend": True,
                "concurrencyPolicy": "Replace",
                "successfulJobsHistoryLimit": 5,
                "failedJobsHistoryLimit": 2,
                "activeDeadlineSeconds": 1200,
                "backoffLimit": 2,
                "resources": {
                    "requests": {"cpu": "500m", "memory": "1Gi"},
                    "limits": {"cpu": "3", "memory": "3Gi"},
                },
            },
            "storage": {
                "size": "5Gi",
                "storageClassName": "nfs",
                "accessMode": "ReadWriteMany",
                # What the chart does (helm.sh/resource-policy: keep): keptWhenTheInstanceGoes.
                "retainPolicy": "Retain",
            },
            "ingress": {
                "enabled": True,
                "className": "nginx",
                "host": "recs.example.com",
                "tlsSecretName": "recs-tls",
            },
            "networkPolicy": {"enabled": False},
        },
        image="registry.example.com/recsys:1.2.3",
    ),
    # The switches the other way round: api autoscaled, collector fixed, a volume for one
    # node (training next to ingest), no Ingress, isolation on without bundled servers.
    "flipped": Scenario(
        values={
            "image": {"pullPolicy": "Never"},
            "redis": {"enabled": False},
            "rabbitmq": {"enabled": False},
            "externalRedis": {"existingSecret": "conn", "existingSecretKey": "redis"},
            "externalRabbitmq": {"existingSecret": "conn", "existingSecretKey": "amqp"},
            "api": {
                "autoscaling": {
                    "enabled": True,
                    "minReplicas": 4,
                    "maxReplicas": 9,
                    "targetCPUUtilizationPercentage": 50,
                },
                "pdb": {"enabled": False},
            },
            "collector": {
                "replicaCount": 4,
                "autoscaling": {"enabled": False},
                "pdb": {"enabled": True, "maxUnavailable": 1},
                "resources": {
                    "requests": {"cpu": "75m", "memory": "200Mi"},
                    "limits": {"cpu": "750m", "memory": "400Mi"},
                },
            },
            "training": {"schedule": "0 */2 * * *"},
            "persistence": {"accessMode": "ReadWriteOnce"},
            "ingress": {"enabled": False},
            "networkPolicy": {"enabled": True},
        },
        spec={
            "imagePullPolicy": "Never",
            "redis": {"secretRef": {"name": "conn", "key": "redis"}},
            "amqp": {"secretRef": {"name": "conn", "key": "amqp"}},
            "api": {
                "autoscaling": {
                    "enabled": True,
                    "minReplicas": 4,
                    "maxReplicas": 9,
                    "targetCPUUtilizationPercentage": 50,
                },
                "podDisruptionBudget": {"enabled": False},
            },
            "collector": {
                "replicas": 4,
                "autoscaling": {"enabled": False},
                "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1},
                "resources": {
                    "requests": {"cpu": "75m", "memory": "200Mi"},
                    "limits": {"cpu": "750m", "memory": "400Mi"},
                },
            },
            "training": {"schedule": "0 */2 * * *"},
            "storage": {"accessMode": "ReadWriteOnce"},
            "ingress": {"enabled": False},
            "networkPolicy": {"enabled": True},
        },
    ),
}


@dataclass(frozen=True)
class Deliberate:
    """Differences the two sides keep on purpose: ``pattern`` (fnmatch over a fact's path,
    ``Kind/name:path``) and why."""

    pattern: str
    reason: str


DELIBERATE: tuple[Deliberate, ...] = (
    Deliberate(
        "ConfigMap/shop-dashboard*",
        "The Grafana dashboard covers every instance of a namespace (its one variable is the "
        "namespace, its uid is fixed): it belongs to a release (the app chart's, or whoever "
        "installs Grafana), not to each RecSystem, which would ship the same uid N times.",
    ),
    Deliberate(
        "Secret/recsys-redis*",
        "Credentials of the Redis the chart bundles; a RecSystem bundles no server, it names "
        "the Secret holding the URL (here this very one).",
    ),
    Deliberate("Secret/recsys-rabbitmq*", "As Secret/recsys-redis, for the bundled RabbitMQ."),
    Deliberate(
        "NetworkPolicy/shop-redis*",
        "The chart's Redis policy guards the server it bundles. What matters for an instance, "
        "that its pods are admitted as the chart's own, is judged by semantics "
        "(reachability:*->redis).",
    ),
    Deliberate("NetworkPolicy/shop-rabbitmq*", "As NetworkPolicy/shop-redis, for RabbitMQ."),
    Deliberate(
        "StatefulSet/shop-redis*",
        "The Valkey server the chart bundles (its StatefulSet, Services and ConfigMap); a "
        "RecSystem bundles no server, it names the Secret holding the URL.",
    ),
    Deliberate("Service/shop-redis*", "As StatefulSet/shop-redis (its Service, headless too)."),
    Deliberate("ConfigMap/shop-redis*", "As StatefulSet/shop-redis (its valkey.conf)."),
    Deliberate("StatefulSet/shop-rabbitmq*", "As StatefulSet/shop-redis, for RabbitMQ."),
    Deliberate("Service/shop-rabbitmq*", "As StatefulSet/shop-redis, for RabbitMQ."),
    Deliberate("ConfigMap/shop-rabbitmq*", "As StatefulSet/shop-redis, for RabbitMQ."),
    Deliberate(
        "*.labels.app.kubernetes.io/managed-by",
        "Who manages the object: Helm or recsys-operator (no selector uses it).",
    ),
    Deliberate("*.labels.helm.sh/chart", "Helm's chart label (no selector uses it)."),
    Deliberate(
        "*.labels.app.kubernetes.io/version",
        "The chart's appVersion; the operator's image tag says the same (no selector uses it).",
    ),
    Deliberate(
        "*.annotations.*",
        "Both roll pods when the configuration changes: Helm hashes the rendered ConfigMap and "
        "admin Secret (checksum/*), the operator the ConfigMap's data (recsys.io/config-hash); "
        "training pods read the configuration when they start and need no hash.",
    ),
    Deliberate(
        "Secret/shop-admin:keptWhenTheInstanceGoes",
        "The generated admin token: the chart keeps it on uninstall (helm.sh/resource-policy: "
        "keep), a RecSystem owns it, so deleting the RecSystem garbage-collects it (a "
        "re-created one gets a new token). The interaction log is kept by both (retainPolicy "
        "Retain, the default).",
    ),
    Deliberate(
        "Secret/shop-admin:keys",
        "The generated admin token's key: `admin-token` in the chart (auth.existingSecretKey), "
        "`token` in the operator. Both Secrets are created once and kept; renaming either key "
        "would orphan the tokens of existing installations. Given Secrets are the same.",
    ),
    Deliberate(
        "*.env.RECSYS_ADMIN_TOKEN.valueFrom.secretKeyRef.key",
        "Follows from Secret/shop-admin:keys (only with a generated token).",
    ),
)

#: Chart values (fnmatch over dotted paths of values.yaml) no scenario sets, and why. Every
#: other value is set in a scenario, so compared with its RecSystem counterpart
#: (test_every_chart_value_is_compared_or_named).
NOT_COMPARED: Mapping[str, str] = {
    "training.mode": (
        "inProcess (chart only): the ingest pod retrains every intervalSeconds in-process. The "
        "operator's status (TrainingSucceeded, modelVersion, holdoutNDCG) comes from each "
        "training pod's termination message, which an in-process loop has not; sub-minute "
        "training, the reason for that mode, is operator-launched Jobs "
        "(spec.training.intervalSeconds < 60)."
    ),
    "training.intervalSeconds": "The in-process trainer's cycle (training.mode above).",
    "monitoring.dashboard.*": "See DELIBERATE (ConfigMap/shop-dashboard).",
    "monitoring.serviceMonitor.*": (
        "Both sides have it; rendered only with the Prometheus Operator CRDs. Scraping and "
        "rules are checked against real /metrics and promtool in test_alerts.py."
    ),
    "monitoring.prometheusRule.*": "As monitoring.serviceMonitor.*.",
    "redis.*": "The bundled Valkey (chart only); a RecSystem names its servers' Secrets.",
    "rabbitmq.*": "The bundled RabbitMQ (chart only), as redis.*.",
    "networkPolicy.clientNamespaceSelector": (
        "Who may reach the bundled servers from other namespaces: a chart-only concern "
        "(the instance's side of it, its client labels, is compared)."
    ),
    "auth.adminToken": "A fixed token in values (development, GitOps); a RecSystem names a Secret.",
    "config.logFormat": "The operator always writes JSON lines (the chart's default, compared).",
    "config.keyPrefix": (
        "A chart override; the operator derives the isolation names from namespace and name, "
        "as the chart's defaults do (the ConfigMap is compared)."
    ),
    "config.queue": "As config.keyPrefix.",
    "config.exchange": "As config.keyPrefix.",
    "config.routingKey": "As config.keyPrefix.",
    "*.service.*": "The operator's Services are ClusterIP on 5001/5000 (the chart's defaults).",
    "ingress.annotations": "Not in the CRD yet.",
    "imagePullSecrets": "Not in the CRD yet.",
    "nodeSelector": "Not in the CRD yet.",
    "tolerations": "Not in the CRD yet.",
    "podAnnotations": "Not in the CRD yet.",
    "commonLabels": "Not in the CRD yet.",
    "podSecurityContext.*": "The operator fixes the restricted profile (the chart's default).",
    "containerSecurityContext.*": "As podSecurityContext.*.",
    "global": "Helm's global values: the chart has no sub-charts and reads none.",
    "kube-prometheus-stack.*": "No longer bundled (must stay false): installed on its own.",
    "nameOverride": "Release naming (the scenarios use fullnameOverride = the RecSystem's name).",
    "fullnameOverride": "As nameOverride.",
    "tests.enabled": "The `helm test` hook: a release feature.",
}


#: RecSystem spec fields (dotted paths in the CRD) no scenario sets, and why.
NOT_COMPARED_SPEC: Mapping[str, str] = {
    "training.intervalSeconds": (
        "Operator only: under a minute, Jobs launched by the operator's scheduler; whole "
        "minutes or hours, a CronJob as for a schedule (which is compared)."
    ),
    "monitoring.*": "As the chart's monitoring.serviceMonitor.* (test_alerts.py).",
}


# --- the operator's side -------------------------------------------------------------------


def operator_default_image(render: Render) -> str:
    """The services image the operator chart gives RecSystems that name none."""
    [deployment] = [o for o in render(OPERATOR_CHART) if o["kind"] == "Deployment"]
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    return str(next(e["value"] for e in env if e["name"] == "RECSYS_OPERATOR_DEFAULT_IMAGE"))


def operator_objects(spec: Obj, image: str) -> list[Obj]:
    from recsys_operator.builders import Instance, build_plan
    from recsys_operator.builders.secret import build_admin_secret
    from recsys_operator.validation import validate

    inst = Instance(NAME, NAMESPACE, "uid-1", validate(NAME, spec), image)
    plan = build_plan(inst)
    objs = [*plan.apply, plan.data_pvc]
    if inst.spec.admin_token.secret_ref is None:
        objs.append(build_admin_secret(inst, "generated"))  # as the reconciler creates it
    return objs


def chart_objects(render: Render, chart: Path, values: Obj, tmp_path: Path) -> list[Obj]:
    file = tmp_path / "values.yaml"
    file.write_text(yaml.safe_dump({"fullnameOverride": NAME, **values}))
    objs = render(chart, "-f", str(file), release=NAME, namespace=NAMESPACE)
    # Hooks (the `helm test` pod) are run by Helm on demand, not part of the instance.
    return [o for o in objs if "helm.sh/hook" not in (o["metadata"].get("annotations") or {})]


# --- facts ---------------------------------------------------------------------------------

PROBE_DEFAULTS = {
    "initialDelaySeconds": 0,
    "timeoutSeconds": 1,
    "periodSeconds": 10,
    "successThreshold": 1,
    "failureThreshold": 3,
}


def _named(items: list[Obj] | None, key: str = "name") -> Obj:
    return {item[key]: item for item in items or []}


def _probe(probe: Obj | None) -> Obj | None:
    # The API server fills these in; "period 10" written or not is the same probe.
    if probe is None:
        return None
    filled = {**PROBE_DEFAULTS, **probe}
    if "httpGet" in filled:
        filled["httpGet"] = {"scheme": "HTTP", **filled["httpGet"]}
    return filled


def _container(container: Obj) -> Obj:
    return {
        "image": container.get("image"),
        "imagePullPolicy": container.get("imagePullPolicy"),
        "command": container.get("command"),
        "args": container.get("args"),
        "env": _named(container.get("env")),
        "envFrom": container.get("envFrom"),
        "ports": {p["name"]: {"protocol": "TCP", **p} for p in container.get("ports") or []},
        "startupProbe": _probe(container.get("startupProbe")),
        "readinessProbe": _probe(container.get("readinessProbe")),
        "livenessProbe": _probe(container.get("livenessProbe")),
        "resources": container.get("resources"),
        "securityContext": container.get("securityContext"),
        "volumeMounts": _named(container.get("volumeMounts")),
        "terminationMessagePath": container.get("terminationMessagePath"),
        "terminationMessagePolicy": container.get("terminationMessagePolicy"),
    }


def _pod(template: Obj) -> Obj:
    spec = template["spec"]
    return {
        "labels": template["metadata"].get("labels"),
        "annotations": template["metadata"].get("annotations"),
        "restartPolicy": spec.get("restartPolicy"),
        "automountServiceAccountToken": spec.get("automountServiceAccountToken"),
        "securityContext": spec.get("securityContext"),
        "affinity": spec.get("affinity"),
        "volumes": _named(spec.get("volumes")),
        "containers": {c["name"]: _container(c) for c in spec["containers"]},
    }


def _facts(obj: Obj) -> Obj:
    """The facts of one object that decide how the instance runs (NetworkPolicies aside)."""
    kind, spec = obj["kind"], obj.get("spec") or {}
    if kind == "Deployment":
        return {
            "replicas": spec.get("replicas"),
            "selector": spec["selector"],
            "strategy": spec.get("strategy"),
            "pod": _pod(spec["template"]),
        }
    if kind == "CronJob":
        job = spec["jobTemplate"]
        return {
            **{k: v for k, v in spec.items() if k != "jobTemplate"},
            "jobTemplate": {"labels": job["metadata"].get("labels")},
            "backoffLimit": job["spec"].get("backoffLimit"),
            "activeDeadlineSeconds": job["spec"].get("activeDeadlineSeconds"),
            "pod": _pod(job["spec"]["template"]),
        }
    if kind == "StatefulSet":
        return {
            "replicas": spec.get("replicas"),
            "selector": spec["selector"],
            "serviceName": spec.get("serviceName"),
            "pod": _pod(spec["template"]),
            "claims": {
                c["metadata"]["name"]: {
                    "accessModes": c["spec"].get("accessModes"),
                    "storage": c["spec"]["resources"]["requests"]["storage"],
                }
                for c in spec.get("volumeClaimTemplates") or []
            },
        }
    if kind == "Service":
        return {
            "type": spec.get("type", "ClusterIP"),
            "selector": spec.get("selector"),
            "ports": {
                p["name"]: {"protocol": "TCP", "targetPort": p["port"], **p}
                for p in spec.get("ports") or []
            },
        }
    if kind == "ConfigMap":
        return {"data": obj.get("data")}
    if kind == "Secret":
        return {
            "type": obj.get("type"),
            "keys": sorted({**obj.get("data", {}), **obj.get("stringData", {})}),
        }
    if kind == "PersistentVolumeClaim":
        return {
            "accessModes": spec.get("accessModes"),
            "storageClassName": spec.get("storageClassName"),
            "storage": spec["resources"]["requests"]["storage"],
        }
    if kind in {"HorizontalPodAutoscaler", "PodDisruptionBudget", "Ingress"}:
        return dict(spec)
    raise AssertionError(f"no facts defined for {kind}: add them, or to DELIBERATE")


def _kept(obj: Obj) -> bool:
    """Whether the object outlives ``helm uninstall`` or the deletion of its RecSystem."""
    meta = obj["metadata"]
    if (meta.get("annotations") or {}).get("helm.sh/resource-policy") == "keep":
        return True
    # Helm deletes what it installed; the garbage collector what a RecSystem owns.
    helm = (meta.get("labels") or {}).get("app.kubernetes.io/managed-by") == "Helm"
    return not helm and not meta.get("ownerReferences")


def _flatten(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    # None and {} say the same as a field left out (no annotations, no command).
    if isinstance(value, Mapping):
        for key, sub in value.items():
            yield from _flatten(sub, f"{path}.{key}")
    elif value is not None:
        yield path, value


def _pods(objs: list[Obj]) -> dict[str, Pod]:
    """The instance's pods by component, labelled as their templates label them."""
    pods: dict[str, Pod] = {}
    for obj in objs:
        if obj["kind"] == "Deployment":
            template = obj["spec"]["template"]
        elif obj["kind"] == "CronJob":
            template = obj["spec"]["jobTemplate"]["spec"]["template"]
        else:
            continue
        labels = template["metadata"]["labels"]
        pods[labels["app.kubernetes.io/component"]] = Pod(NAMESPACE, labels)
    return pods


# The servers the chart bundles, labelled as its StatefulSets label their pods (checked by
# test_the_bundled_servers_are_labelled_as_the_chart_labels_them).
SERVERS = {
    "redis": Pod(
        NAMESPACE,
        {
            "app.kubernetes.io/name": "valkey",
            "app.kubernetes.io/instance": NAME,
            "app.kubernetes.io/component": "redis",
            "app.kubernetes.io/part-of": "recsys",
        },
    ),
    "rabbitmq": Pod(
        NAMESPACE,
        {
            "app.kubernetes.io/name": "rabbitmq",
            "app.kubernetes.io/instance": NAME,
            "app.kubernetes.io/component": "rabbitmq",
            "app.kubernetes.io/part-of": "recsys",
        },
    ),
}
STRANGERS = {
    "stranger": Pod(NAMESPACE, {"app": "something-else"}),
    "elsewhere": Pod("team-b", {"app": "x"}, {"kubernetes.io/metadata.name": "team-b"}),
}
# The servers' ports and one nobody serves; every port a container declares or a policy names
# is probed too (a fixed list missed the probe ports when they were added).
PORTS = (6379, 26379, 5672, 8080)


def _ports(objs: list[Obj]) -> set[int]:
    found = set(PORTS)
    for obj in objs:
        if obj["kind"] == "NetworkPolicy":
            for rule in obj["spec"].get("ingress") or []:
                found |= {
                    p["port"] for p in rule.get("ports") or [] if isinstance(p.get("port"), int)
                }
            continue
        spec = obj.get("spec") or {}
        if obj["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        for container in (spec.get("template") or {}).get("spec", {}).get("containers", []):
            found |= {p["containerPort"] for p in container.get("ports") or []}
    return found


def _reachability(objs: list[Obj], server_policies: list[Obj]) -> dict[str, bool]:
    """Who may open which port on the instance's pods and on the bundled servers.

    ``server_policies`` are the chart's policies for its bundled Redis and RabbitMQ: an
    operator instance is judged against the same ones, as a client of those servers.
    """
    policies = [o for o in objs if o["kind"] == "NetworkPolicy"] + server_policies
    ports = sorted(_ports(objs))
    own = _pods(objs)
    targets = {**own, **SERVERS}
    sources = {**own, **STRANGERS}
    return {
        f"reachability:{src}->{dst}:{port}": admits(policies, source, target, port)
        for src, source in sources.items()
        for dst, target in targets.items()
        if src != dst
        for port in ports
    }


def facts(objs: list[Obj], server_policies: list[Obj]) -> dict[str, Any]:
    """Every fact of one side, by path (``Kind/name:...``); objects by presence."""
    found: dict[str, Any] = {}
    for obj in objs:
        key = f"{obj['kind']}/{obj['metadata']['name']}"
        found[key] = "present"
        found[f"{key}:keptWhenTheInstanceGoes"] = _kept(obj)
        if obj["kind"] != "NetworkPolicy":
            found.update(_flatten(_facts(obj), key + ":"))
    found.update(_reachability(objs, server_policies))
    return {path.replace(":.", ":"): value for path, value in found.items()}


@dataclass
class Comparison:
    unexplained: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    explained: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)


def compare(chart: dict[str, Any], operator: dict[str, Any]) -> Comparison:
    result = Comparison()
    for path in sorted(set(chart) | set(operator)):
        pair = (chart.get(path, "<absent>"), operator.get(path, "<absent>"))
        if pair[0] == pair[1]:
            continue
        reasons = [d.pattern for d in DELIBERATE if fnmatch.fnmatchcase(path, d.pattern)]
        if reasons:
            result.explained[path] = pair
            result.used.update(reasons)
        else:
            result.unexplained[path] = pair
    return result


def server_policies(chart_objs: list[Obj]) -> list[Obj]:
    """The chart's policies that select a bundled server's pods."""
    return [
        o
        for o in chart_objs
        if o["kind"] == "NetworkPolicy"
        and any(selects(o["spec"]["podSelector"], pod.labels) for pod in SERVERS.values())
    ]


# --- tests ---------------------------------------------------------------------------------


def _compare_scenario(
    render: Render, app_chart: Path, scenario: Scenario, tmp_path: Path
) -> Comparison:
    chart_objs = chart_objects(render, app_chart, scenario.values, tmp_path)
    image = scenario.image or operator_default_image(render)
    op_objs = operator_objects(scenario.spec, image)
    servers = server_policies(chart_objs)
    return compare(facts(chart_objs, []), facts(op_objs, servers))


def _report(differences: Mapping[str, tuple[Any, Any]]) -> str:
    return "\n".join(
        f"  {path}: chart {c!r} != operator {o!r}" for path, (c, o) in differences.items()
    )


def _value_paths(values: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in values.items():
        if isinstance(value, Mapping) and value:
            yield from _value_paths(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def test_every_chart_value_is_compared_or_named() -> None:
    """A new chart value needs its RecSystem counterpart (and a scenario setting both), or a
    line in NOT_COMPARED saying why the operator has none."""
    chart = set(_value_paths(yaml.safe_load((APP_CHART / "values.yaml").read_text())))
    given = {path for scenario in SCENARIOS.values() for path in _value_paths(scenario.values)}
    assert given <= chart, f"scenarios set values the chart lacks: {sorted(given - chart)}"

    def named(path: str) -> bool:
        return any(fnmatch.fnmatchcase(path, pattern) for pattern in NOT_COMPARED)

    missing = sorted(path for path in chart - given if not named(path))
    assert not missing, f"chart values neither compared nor in NOT_COMPARED: {missing}"
    stale = [
        pattern
        for pattern in NOT_COMPARED
        if not any(fnmatch.fnmatchcase(path, pattern) for path in chart - given)
    ]
    assert not stale, f"NOT_COMPARED entries that name no uncompared value: {stale}"


def _crd_fields(node: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    properties = node.get("properties")
    if not properties:
        yield prefix.rstrip(".")
        return
    for key, sub in properties.items():
        yield from _crd_fields(sub, f"{prefix}{key}.")


def test_every_recsystem_field_is_compared_or_named() -> None:
    """The other direction: a new CRD field needs its chart counterpart in a scenario, or a
    line in NOT_COMPARED_SPEC."""
    from recsys_operator.crdgen import load_crd

    schema = load_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    fields = set(_crd_fields(schema["properties"]["spec"]))
    given = {path for scenario in SCENARIOS.values() for path in _value_paths(scenario.spec)}
    if any(scenario.image for scenario in SCENARIOS.values()):
        given.add("image")

    def covered(field: str) -> bool:
        # Free-form maps (resources.requests) are set key by key in the scenarios.
        return any(path == field or path.startswith(field + ".") for path in given)

    def named(field: str) -> bool:
        return any(fnmatch.fnmatchcase(field, pattern) for pattern in NOT_COMPARED_SPEC)

    missing = sorted(f for f in fields if not covered(f) and not named(f))
    assert not missing, f"RecSystem fields neither compared nor in NOT_COMPARED_SPEC: {missing}"
    stale = [
        pattern
        for pattern in NOT_COMPARED_SPEC
        if not any(fnmatch.fnmatchcase(f, pattern) and not covered(f) for f in fields)
    ]
    assert not stale, f"NOT_COMPARED_SPEC entries that name no uncompared field: {stale}"


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_chart_and_operator_build_the_same_children(
    render: Render, app_chart: Path, name: str, tmp_path: Path
) -> None:
    result = _compare_scenario(render, app_chart, SCENARIOS[name], tmp_path)
    assert not result.unexplained, (
        f"chart and operator differ ({name}); align them, or add the difference to "
        f"DELIBERATE with its reason:\n{_report(result.unexplained)}"
    )


def test_every_deliberate_difference_still_exists(
    render: Render, app_chart: Path, tmp_path: Path
) -> None:
    used: set[str] = set()
    for name, scenario in SCENARIOS.items():
        (tmp_path / name).mkdir()
        used |= _compare_scenario(render, app_chart, scenario, tmp_path / name).used
    stale = [d.pattern for d in DELIBERATE if d.pattern not in used]
    assert not stale, f"DELIBERATE entries no scenario needs any more (remove them): {stale}"


def test_an_instance_in_another_namespace_reaches_the_bundled_servers_only_when_named(
    render: Render, app_chart: Path, tmp_path: Path
) -> None:
    """The other half of "admit client namespaces": a RecSystem elsewhere (its pods as the
    operator labels them) reaches the chart's Redis and RabbitMQ once the release's
    ``networkPolicy.clientNamespaceSelector`` selects its namespace, and not before."""
    spec = {
        "redis": {"secretRef": {"name": "conn", "key": "redis"}},
        "amqp": {"secretRef": {"name": "conn", "key": "amqp"}},
    }
    team = {"kubernetes.io/metadata.name": "team-a"}
    pods = {
        component: Pod("team-a", pod.labels, team)
        for component, pod in _pods(operator_objects(spec, "img")).items()
    }
    selector = {"networkPolicy": {"clientNamespaceSelector": {"matchLabels": team}}}
    closed = server_policies(chart_objects(render, app_chart, {}, tmp_path))
    opened = server_policies(chart_objects(render, app_chart, selector, tmp_path))
    for component, pod in pods.items():
        assert not admits(closed, pod, SERVERS["redis"], 6379), component
        assert admits(opened, pod, SERVERS["redis"], 6379), component
        # Training never publishes, so it is no RabbitMQ client, here as at home.
        assert admits(opened, pod, SERVERS["rabbitmq"], 5672) is (component != "train")
    other = Pod("team-b", pods["api"].labels, {"kubernetes.io/metadata.name": "team-b"})
    assert not admits(opened, other, SERVERS["redis"], 6379)


def test_the_bundled_servers_are_labelled_as_the_chart_labels_them(
    render: Render, app_chart: Path, tmp_path: Path
) -> None:
    """SERVERS stands for the pods of the chart's Valkey and RabbitMQ StatefulSets: their
    labels are the rendered ones, and each is selected by the chart's own policy for it, so
    the reachability compared above is judged on the real servers."""
    objs = chart_objects(render, app_chart, {}, tmp_path)
    rendered = {
        o["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]: o["spec"][
            "template"
        ]["metadata"]["labels"]
        for o in objs
        if o["kind"] == "StatefulSet"
    }
    assert set(rendered) == set(SERVERS)
    for component, pod in SERVERS.items():
        assert pod.labels.items() <= rendered[component].items(), component
        names = [
            p["metadata"]["name"]
            for p in server_policies(objs)
            if selects(p["spec"]["podSelector"], pod.labels)
        ]
        assert names == [f"{NAME}-{component}"], (component, names)
