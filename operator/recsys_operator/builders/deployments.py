"""Deployments: the api and collector HTTP tiers, and the single ingest consumer."""

from __future__ import annotations

from recsys_operator import constants as c
from recsys_operator.builders.common import (
    Instance,
    Obj,
    common_env,
    container_security_context,
    content_hash,
    data_mount,
    data_volume,
    env_from,
    labels,
    metadata,
    pod_security_context,
    resources,
    selector_labels,
    tmp_mount,
    tmp_volume,
)
from recsys_operator.builders.configmap import build_config_data
from recsys_operator.spec import Component


def _pod_labels(inst: Instance, component: str) -> dict[str, str]:
    # Every long-running component talks to both Redis and RabbitMQ.
    return {**labels(inst, component), c.LABEL_REDIS_CLIENT: "true", c.LABEL_AMQP_CLIENT: "true"}


def _pod_annotations(inst: Instance) -> dict[str, str]:
    # A changed ConfigMap does not restart pods by itself; a changed template annotation does.
    return {c.ANNOTATION_CONFIG_HASH: content_hash(build_config_data(inst))}


def _http_probe(path: str, port: str, period: int, failures: int) -> Obj:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def _http_deployment(
    inst: Instance, component: str, tier: Component, port: int, probe_port: int
) -> Obj:
    container: Obj = {
        "name": component,
        "image": inst.image,
        "imagePullPolicy": inst.spec.image_pull_policy,
        "args": [component],
        "ports": [
            {"name": "http", "containerPort": port, "protocol": "TCP"},
            {"name": "probes", "containerPort": probe_port, "protocol": "TCP"},
        ],
        "env": common_env(inst),
        "envFrom": env_from(inst),
        "resources": resources(component, tier.resources),
        "securityContext": container_security_context(),
        # Start-up: the serving port answers. After it, the probes use their own port,
        # served by a thread of its own, so a flood on the serving port does not make a busy
        # pod look dead (services/common/health_server.py). Readiness follows /healthcheck
        # (503 while Redis or the broker is down, so traffic drains); liveness (/livez) only
        # asks whether the serving event loop still turns, so an outage of a dependency does
        # not turn into a restart storm.
        "readinessProbe": _http_probe("/healthcheck", "probes", 5, 3),
        "livenessProbe": _http_probe("/livez", "probes", 10, 6),
        "startupProbe": _http_probe("/metrics", "http", 2, 60),
        "volumeMounts": [tmp_mount()],
    }
    spec: Obj = {
        "selector": {"matchLabels": selector_labels(inst, component)},
        # Never drop below the current capacity during a rollout.
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "template": {
            "metadata": {
                "labels": _pod_labels(inst, component),
                "annotations": _pod_annotations(inst),
            },
            "spec": {
                "securityContext": pod_security_context(),
                "automountServiceAccountToken": False,
                "containers": [container],
                "volumes": [tmp_volume()],
            },
        },
    }
    # With an HPA the replica count belongs to it; writing it here would fight the autoscaler.
    if not tier.autoscaling.enabled:
        spec = {"replicas": tier.replicas, **spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(inst, inst.child(component), component),
        "spec": spec,
    }


def build_api_deployment(inst: Instance) -> Obj:
    """The recommendation API (``recsys api``, port 5001)."""
    return _http_deployment(inst, c.API, inst.spec.api, c.API_PORT, c.API_PROBE_PORT)


def build_collector_deployment(inst: Instance) -> Obj:
    """The feedback collector (``recsys collector``, port 5000)."""
    return _http_deployment(
        inst, c.COLLECTOR, inst.spec.collector, c.COLLECTOR_PORT, c.COLLECTOR_PROBE_PORT
    )


def build_ingest_deployment(inst: Instance) -> Obj:
    """The queue consumer: exactly one writer of the log, so one replica and Recreate."""
    container: Obj = {
        "name": c.INGEST,
        "image": inst.image,
        "imagePullPolicy": inst.spec.image_pull_policy,
        "args": [c.INGEST],
        "ports": [{"name": "metrics", "containerPort": c.METRICS_PORT, "protocol": "TCP"}],
        "env": common_env(inst),
        "envFrom": env_from(inst),
        "resources": resources(c.INGEST, inst.spec.ingest.resources),
        "securityContext": container_security_context(),
        # ingest has no HTTP API; its metrics endpoint proves the process is alive.
        "readinessProbe": _http_probe("/metrics", "metrics", 10, 3),
        "livenessProbe": _http_probe("/metrics", "metrics", 10, 6),
        "volumeMounts": [tmp_mount(), data_mount()],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(inst, inst.child(c.INGEST), c.INGEST),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector_labels(inst, c.INGEST)},
            # Two consumers must never write the same log, not even during a rollout.
            "strategy": {"type": "Recreate"},
            "template": {
                "metadata": {
                    "labels": _pod_labels(inst, c.INGEST),
                    "annotations": _pod_annotations(inst),
                },
                "spec": {
                    "securityContext": pod_security_context(),
                    "automountServiceAccountToken": False,
                    "containers": [container],
                    "volumes": [tmp_volume(), data_volume(inst)],
                },
            },
        },
    }
