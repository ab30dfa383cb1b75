"""HorizontalPodAutoscalers and PodDisruptionBudgets of the HTTP tiers."""

from __future__ import annotations

from recsys_operator.builders.common import Instance, Obj, metadata, selector_labels
from recsys_operator.spec import Component


def _tier(inst: Instance, component: str) -> Component:
    tier: Component = getattr(inst.spec, component)
    return tier


def build_hpa(inst: Instance, component: str) -> Obj | None:
    """autoscaling/v2 HPA on CPU utilisation, or None when autoscaling is disabled."""
    scaling = _tier(inst, component).autoscaling
    if not scaling.enabled:
        return None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(inst, inst.child(component), component),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": inst.child(component),
            },
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": scaling.target_cpu_utilization_percentage,
                        },
                    },
                }
            ],
        },
    }


def build_pdb(inst: Instance, component: str) -> Obj | None:
    """policy/v1 PDB, or None when disabled."""
    budget = _tier(inst, component).pod_disruption_budget
    if not budget.enabled:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(inst, inst.child(component), component),
        "spec": {
            "maxUnavailable": budget.max_unavailable,
            "selector": {"matchLabels": selector_labels(inst, component)},
        },
    }
