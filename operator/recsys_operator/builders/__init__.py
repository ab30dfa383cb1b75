"""Pure builders: a RecSystem in, the desired child objects out (no I/O anywhere here)."""

from __future__ import annotations

from dataclasses import dataclass, field

from recsys_operator import constants as c
from recsys_operator.builders.common import Instance, Obj
from recsys_operator.builders.configmap import build_configmap
from recsys_operator.builders.deployments import (
    build_api_deployment,
    build_collector_deployment,
    build_ingest_deployment,
)
from recsys_operator.builders.ingress import build_ingress
from recsys_operator.builders.monitoring import build_prometheus_rule, build_service_monitor
from recsys_operator.builders.network_policy import build_network_policy, network_policy_name
from recsys_operator.builders.scaling import build_hpa, build_pdb
from recsys_operator.builders.services import (
    build_api_service,
    build_collector_service,
    build_ingest_service,
)
from recsys_operator.builders.storage import build_data_pvc
from recsys_operator.builders.trainer import build_cronjob


@dataclass(frozen=True)
class ObjectRef:
    """Identifies a child that must not exist (e.g. an HPA after autoscaling was disabled)."""

    api_version: str
    kind: str
    name: str


@dataclass
class Plan:
    """What the reconciler sends: objects to keep in sync, the data claim, and what to remove."""

    #: The interaction-log claim: created once (its spec is largely immutable); afterwards
    #: only its owner reference follows ``storage.retainPolicy``.
    data_pvc: Obj
    apply: list[Obj] = field(default_factory=list)
    absent: list[ObjectRef] = field(default_factory=list)


def build_plan(inst: Instance) -> Plan:
    """The full desired state of one RecSystem (the admin Secret is handled by the caller)."""
    plan = Plan(
        data_pvc=build_data_pvc(inst),
        apply=[
            build_configmap(inst),
            build_api_deployment(inst),
            build_collector_deployment(inst),
            build_ingest_deployment(inst),
            build_api_service(inst),
            build_collector_service(inst),
            build_ingest_service(inst),
        ],
    )
    optional: list[tuple[str, str, str, Obj | None]] = [
        ("autoscaling/v2", "HorizontalPodAutoscaler", inst.child(c.API), build_hpa(inst, c.API)),
        (
            "autoscaling/v2",
            "HorizontalPodAutoscaler",
            inst.child(c.COLLECTOR),
            build_hpa(inst, c.COLLECTOR),
        ),
        ("policy/v1", "PodDisruptionBudget", inst.child(c.API), build_pdb(inst, c.API)),
        ("policy/v1", "PodDisruptionBudget", inst.child(c.COLLECTOR), build_pdb(inst, c.COLLECTOR)),
        ("networking.k8s.io/v1", "Ingress", inst.name, build_ingress(inst)),
        (
            "networking.k8s.io/v1",
            "NetworkPolicy",
            network_policy_name(inst),
            build_network_policy(inst),
        ),
        ("batch/v1", "CronJob", inst.child(c.TRAIN), build_cronjob(inst)),
        ("monitoring.coreos.com/v1", "ServiceMonitor", inst.name, build_service_monitor(inst)),
        ("monitoring.coreos.com/v1", "PrometheusRule", inst.name, build_prometheus_rule(inst)),
    ]
    for api_version, kind, name, obj in optional:
        if obj is None:
            plan.absent.append(ObjectRef(api_version, kind, name))
        else:
            plan.apply.append(obj)
    return plan


__all__ = ["Instance", "Obj", "ObjectRef", "Plan", "build_plan"]
