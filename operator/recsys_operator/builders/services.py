"""ClusterIP Services for the api, the collector and the ingest metrics endpoint."""

from __future__ import annotations

from recsys_operator import constants as c
from recsys_operator.builders.common import Instance, Obj, metadata, selector_labels


def _service(inst: Instance, component: str, port_name: str, port: int) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(inst, inst.child(component), component),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(inst, component),
            "ports": [
                {"name": port_name, "port": port, "targetPort": port_name, "protocol": "TCP"}
            ],
        },
    }


def build_api_service(inst: Instance) -> Obj:
    """``<name>-api:5001``."""
    return _service(inst, c.API, "http", c.API_PORT)


def build_collector_service(inst: Instance) -> Obj:
    """``<name>-collector:5000``."""
    return _service(inst, c.COLLECTOR, "http", c.COLLECTOR_PORT)


def build_ingest_service(inst: Instance) -> Obj:
    """``<name>-ingest:9100``: only so that a ServiceMonitor can scrape ingest."""
    return _service(inst, c.INGEST, "metrics", c.METRICS_PORT)
