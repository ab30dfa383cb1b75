"""One Ingress host: ``/interact`` to the collector, everything else to the api."""

from __future__ import annotations

from recsys_operator import constants as c
from recsys_operator.builders.common import Instance, Obj, metadata


def _path(path: str, service: str, port: int) -> Obj:
    return {
        "path": path,
        "pathType": "Prefix",
        "backend": {"service": {"name": service, "port": {"number": port}}},
    }


def build_ingress(inst: Instance) -> Obj | None:
    """The Ingress, or None when disabled."""
    ingress = inst.spec.ingress
    if not ingress.enabled or not ingress.host:
        return None
    spec: Obj = {
        "rules": [
            {
                "host": ingress.host,
                "http": {
                    # Longest prefix wins in every controller, so the order is only cosmetic.
                    "paths": [
                        _path("/interact", inst.child(c.COLLECTOR), c.COLLECTOR_PORT),
                        _path("/", inst.child(c.API), c.API_PORT),
                    ]
                },
            }
        ]
    }
    if ingress.class_name:
        spec = {"ingressClassName": ingress.class_name, **spec}
    if ingress.tls_secret_name:
        spec["tls"] = [{"hosts": [ingress.host], "secretName": ingress.tls_secret_name}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata(inst, inst.name, "ingress"),
        "spec": spec,
    }
