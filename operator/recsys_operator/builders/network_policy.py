"""The instance's NetworkPolicy: its pods accept traffic only on the ports they serve.

The same isolation as the app chart's ``<release>-services`` policy
(charts/recsys/templates/networkpolicy.yaml; tests/charts/test_parity.py judges both by
NetworkPolicy semantics). The chart's other two policies guard the Redis and RabbitMQ it
bundles; a RecSystem bundles neither (it names their URLs), so its side of that isolation is
the client labels its pods wear (``recsys.io/redis-client``, ``recsys.io/amqp-client``), which
whoever runs those servers admits (the chart: ``networkPolicy.clientNamespaceSelector``).
"""

from __future__ import annotations

from recsys_operator import constants as c
from recsys_operator.builders.common import Instance, Obj, metadata

# What anyone may reach: the api and the collector (Ingress controller, in-cluster clients),
# the metrics port (Prometheus) and the probe ports (the kubelet's probes: some network
# plugins apply policies to traffic from the node too). Training pods serve nothing, so they
# admit nothing.
SERVED_PORTS = (
    c.API_PORT,
    c.COLLECTOR_PORT,
    c.METRICS_PORT,
    c.API_PROBE_PORT,
    c.COLLECTOR_PROBE_PORT,
)


def network_policy_name(inst: Instance) -> str:
    """``<name>-services``, as the chart names its policy for a release of that name."""
    return inst.child("services")


def build_network_policy(inst: Instance) -> Obj | None:
    """Ingress to every pod of the instance only on the served ports; None when disabled."""
    if not inst.spec.network_policy.enabled:
        return None
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(inst, network_policy_name(inst), "network"),
        "spec": {
            # Every pod of this instance, training Jobs included (not only one component).
            "podSelector": {"matchLabels": {c.LABEL_NAME: c.APP_NAME, c.LABEL_INSTANCE: inst.name}},
            "policyTypes": ["Ingress"],
            "ingress": [{"ports": [{"port": port, "protocol": "TCP"} for port in SERVED_PORTS]}],
        },
    }
