"""Shared pieces of every child object: names, labels, owner references, pod hardening."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from recsys_operator import constants as c
from recsys_operator.spec import RecSystemSpec, Resources

Obj = dict[str, Any]

# Used when a RecSystem leaves resources empty, so every container has requests and limits.
DEFAULT_RESOURCES: Mapping[str, Mapping[str, Mapping[str, str]]] = {
    c.API: {
        "requests": {"cpu": "100m", "memory": "256Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    },
    c.COLLECTOR: {
        "requests": {"cpu": "50m", "memory": "128Mi"},
        "limits": {"cpu": "500m", "memory": "256Mi"},
    },
    c.INGEST: {
        "requests": {"cpu": "50m", "memory": "128Mi"},
        "limits": {"cpu": "500m", "memory": "512Mi"},
    },
    c.TRAIN: {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"cpu": "2", "memory": "2Gi"},
    },
}


@dataclass(frozen=True)
class Instance:
    """Everything a builder needs to know about one RecSystem."""

    name: str
    namespace: str
    uid: str
    spec: RecSystemSpec
    image: str

    def child(self, component: str) -> str:
        """Name of the child object for ``component`` (e.g. ``demo-api``)."""
        return f"{self.name}-{component}"

    @property
    def config_name(self) -> str:
        return f"{self.name}-config"

    @property
    def admin_secret_name(self) -> str:
        """The Secret holding the admin token (the user's, or the generated one)."""
        ref = self.spec.admin_token.secret_ref
        return ref.name if ref else f"{self.name}-admin"

    @property
    def admin_secret_key(self) -> str:
        ref = self.spec.admin_token.secret_ref
        return ref.key if ref else "token"

    @property
    def pvc_name(self) -> str:
        return f"{self.name}-data"

    @property
    def isolation_suffix(self) -> str:
        """``<namespace>.<name>``: unique per instance across the cluster."""
        return f"{self.namespace}.{self.name}"


def selector_labels(inst: Instance, component: str) -> dict[str, str]:
    """Stable labels used in selectors (never change them: selectors are immutable)."""
    return {
        c.LABEL_NAME: c.APP_NAME,
        c.LABEL_INSTANCE: inst.name,
        c.LABEL_COMPONENT: component,
    }


def labels(inst: Instance, component: str) -> dict[str, str]:
    """Full recommended label set."""
    return {
        **selector_labels(inst, component),
        c.LABEL_PART_OF: c.APP_NAME,
        c.LABEL_MANAGED_BY: c.OPERATOR_NAME,
    }


def owner_reference(inst: Instance) -> Obj:
    """Makes the RecSystem the controller of a child: deleting it garbage-collects the child."""
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND,
        "name": inst.name,
        "uid": inst.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(inst: Instance, name: str, component: str, **extra: Any) -> Obj:
    """Standard metadata of a namespaced child."""
    return {
        "name": name,
        "namespace": inst.namespace,
        "labels": labels(inst, component),
        "ownerReferences": [owner_reference(inst)],
        **extra,
    }


def resources(component: str, spec: Resources) -> Obj:
    """Spec resources over the component's defaults, so requests and limits always exist."""
    defaults = DEFAULT_RESOURCES[component]
    return {
        "requests": {**defaults["requests"], **spec.requests},
        "limits": {**defaults["limits"], **spec.limits},
    }


def pod_security_context() -> Obj:
    """Non-root, RuntimeDefault seccomp: the restricted Pod Security Standard."""
    return {
        "runAsNonRoot": True,
        "runAsUser": c.RUN_AS_USER,
        "runAsGroup": c.RUN_AS_USER,
        "fsGroup": c.RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> Obj:
    """No privilege escalation, no capabilities, read-only root (writes go to volumes)."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def secret_env(name: str, secret: str, key: str) -> Obj:
    """An env var read from a Secret (never a plain value)."""
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def common_env(inst: Instance) -> list[Obj]:
    """Credentials every services container needs, all from Secrets."""
    spec = inst.spec
    return [
        secret_env("REDIS_URL", spec.redis.secret_ref.name, spec.redis.secret_ref.key),
        secret_env("AMQP_URL", spec.amqp.secret_ref.name, spec.amqp.secret_ref.key),
        secret_env("RECSYS_ADMIN_TOKEN", inst.admin_secret_name, inst.admin_secret_key),
    ]


def env_from(inst: Instance) -> list[Obj]:
    """Non-secret settings come from the instance ConfigMap."""
    return [{"configMapRef": {"name": inst.config_name}}]


def tmp_volume() -> Obj:
    """Writable /tmp on a read-only root filesystem."""
    return {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}


def tmp_mount() -> Obj:
    return {"name": "tmp", "mountPath": "/tmp"}


def data_volume(inst: Instance) -> Obj:
    return {"name": "data", "persistentVolumeClaim": {"claimName": inst.pvc_name}}


def data_mount() -> Obj:
    return {"name": "data", "mountPath": c.DATA_DIR}


def content_hash(data: Mapping[str, Any]) -> str:
    """Short stable hash, put on pod templates so a config change rolls the pods."""
    raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:16]
