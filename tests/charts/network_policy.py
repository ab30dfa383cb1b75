"""NetworkPolicy ingress semantics (networking.k8s.io/v1), for tests: may a pod reach
another pod's port under a set of policies? Policies add up: a pod selected by any ingress
policy admits only what one of them allows; a pod no policy selects admits everything."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: dict[str, str]
    namespace_labels: dict[str, str] = field(default_factory=dict)


def selects(selector: Obj | None, labels: dict[str, str]) -> bool:
    """A label selector; an empty one selects everything."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _peer_admits(peer: Obj, policy_namespace: str, source: Pod) -> bool:
    if "ipBlock" in peer:
        return False  # pod-to-pod traffic is judged by the selectors here
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], source.namespace_labels):
            return False
    elif source.namespace != policy_namespace:
        return False
    return "podSelector" not in peer or selects(peer["podSelector"], source.labels)


def _port_admits(ports: list[Obj] | None, port: int) -> bool:
    if not ports:
        return True
    return any(p.get("protocol", "TCP") == "TCP" and p.get("port") in (None, port) for p in ports)


def _is_ingress_policy(policy: Obj) -> bool:
    types = policy["spec"].get("policyTypes")
    return "Ingress" in types if types else True


def admits(policies: list[Obj], source: Pod, target: Pod, port: int) -> bool:
    """Whether ``source`` may open a TCP connection to ``target`` on ``port``."""
    selecting = [
        p
        for p in policies
        if p["kind"] == "NetworkPolicy"
        and p["metadata"].get("namespace", target.namespace) == target.namespace
        and _is_ingress_policy(p)
        and selects(p["spec"].get("podSelector"), target.labels)
    ]
    if not selecting:
        return True
    for policy in selecting:
        namespace = policy["metadata"].get("namespace", target.namespace)
        for rule in policy["spec"].get("ingress") or []:
            peers = rule.get("from")
            if (not peers or any(_peer_admits(peer, namespace, source) for peer in peers)) and (
                _port_admits(rule.get("ports"), port)
            ):
                return True
    return False
