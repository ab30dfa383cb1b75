"""The single wrapper around the Kubernetes API used by every handler.

It speaks plain dicts (the builders' output) over the official asyncio client's generic
``param_serialize``/``call_api`` (auth, TLS, kubeconfig handled there), and tolerates 404/409
only where a caller opts in explicitly.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final

from kubernetes.aio import client as kclient
from kubernetes.aio import config as kconfig

from recsys_operator import constants as c
from recsys_operator.errors import KubeApiError

Obj = dict[str, Any]

# The kinds this operator manages, and their plural resource names. Anything else is a bug.
PLURALS: Final[Mapping[tuple[str, str], str]] = {
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "Secret"): "secrets",
    ("v1", "Service"): "services",
    ("v1", "PersistentVolumeClaim"): "persistentvolumeclaims",
    ("v1", "Pod"): "pods",
    ("apps/v1", "Deployment"): "deployments",
    ("batch/v1", "Job"): "jobs",
    ("batch/v1", "CronJob"): "cronjobs",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "horizontalpodautoscalers",
    ("policy/v1", "PodDisruptionBudget"): "poddisruptionbudgets",
    ("networking.k8s.io/v1", "Ingress"): "ingresses",
    ("networking.k8s.io/v1", "NetworkPolicy"): "networkpolicies",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitors",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrules",
    (c.API_VERSION, c.KIND): c.PLURAL,
}

MERGE_PATCH: Final = "application/merge-patch+json"
APPLY_PATCH: Final = "application/apply-patch+yaml"  # a JSON body is valid YAML


class Outcome(StrEnum):
    """What ``ensure`` did."""

    CREATED = "created"
    PATCHED = "patched"
    UNCHANGED = "unchanged"


def path_for(api_version: str, kind: str, namespace: str, name: str | None = None) -> str:
    """REST path of a namespaced collection or object."""
    try:
        plural = PLURALS[(api_version, kind)]
    except KeyError:
        raise ValueError(f"unmanaged kind {api_version}/{kind}") from None
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    path = f"{base}/namespaces/{namespace}/{plural}"
    return f"{path}/{name}" if name else path


def is_subset(desired: Any, live: Any) -> bool:
    """True when every field we set is already present with the same value.

    The server adds defaults and status, so equality is too strict; this is what tells real
    drift (someone changed or removed a field we own) from a harmless server-side addition.
    """
    if isinstance(desired, Mapping):
        return isinstance(live, Mapping) and all(
            key in live and is_subset(value, live[key]) for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(desired) == len(live)
            and all(is_subset(d, lv) for d, lv in zip(desired, live, strict=True))
        )
    if isinstance(desired, bool) or isinstance(live, bool):
        return desired is live
    if isinstance(desired, int | float) and isinstance(live, int | float):
        return float(desired) == float(live)
    return bool(desired == live)


def label_selector(labels: Mapping[str, str]) -> str:
    """Equality-based selector string."""
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


class Kube:
    """Async facade over one configured ``kubernetes.aio.client.ApiClient``."""

    def __init__(self, api_client: kclient.ApiClient) -> None:
        self._client = api_client
        self.closed = False

    @classmethod
    async def from_environment(cls) -> Kube:
        """In-cluster service account if present, else the kubeconfig ($KUBECONFIG)."""
        configuration = kclient.Configuration()
        try:
            kconfig.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except kconfig.ConfigException:
            await kconfig.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration
            )
        return cls(kclient.ApiClient(configuration))

    async def close(self) -> None:
        """Release the connection pool."""
        self.closed = True
        await self._client.close()  # type: ignore[no-untyped-call]

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        method, url, headers, body, post = await self._client.param_serialize(
            method,
            path,
            query_params=query or [],
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = await self._client.call_api(
            method, url, header_params=headers, body=body, post_params=post, _request_timeout=30
        )
        raw: bytes = await response.read()  # type: ignore[no-untyped-call]
        if not 200 <= int(response.status) <= 299:
            reason, message = str(response.reason), raw.decode(errors="replace")
            try:
                payload = json.loads(raw)
                reason = str(payload.get("reason") or reason)
                message = str(payload.get("message") or message)
            except ValueError:
                pass
            raise KubeApiError(int(response.status), reason, message)
        data = json.loads(raw) if raw else {}
        return dict(data) if isinstance(data, Mapping) else {}

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        """The object, or None if it does not exist."""
        try:
            return await self._call("GET", path_for(api_version, kind, namespace, name))
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def list(
        self, api_version: str, kind: str, namespace: str, labels: Mapping[str, str]
    ) -> list[Obj]:
        """Objects matching ``labels`` (re-checked client-side: the selector is the contract)."""
        result = await self._call(
            "GET",
            path_for(api_version, kind, namespace),
            query=[("labelSelector", label_selector(labels))],
        )
        items: list[Obj] = list(result.get("items") or [])
        return [
            item
            for item in items
            if all(
                ((item.get("metadata") or {}).get("labels") or {}).get(k) == v
                for k, v in labels.items()
            )
        ]

    async def create(self, obj: Obj, *, tolerate_conflict: bool = False) -> Obj | None:
        """Create ``obj``; with ``tolerate_conflict`` an existing object yields None."""
        meta = obj["metadata"]
        try:
            return await self._call(
                "POST", path_for(obj["apiVersion"], obj["kind"], meta["namespace"]), body=obj
            )
        except KubeApiError as exc:
            if exc.status == 409 and tolerate_conflict:
                return None
            raise

    async def patch(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        patch: Obj,
        *,
        subresource: str | None = None,
        tolerate_missing: bool = False,
    ) -> Obj | None:
        """JSON merge patch; with ``tolerate_missing`` a vanished object yields None."""
        path = path_for(api_version, kind, namespace, name)
        if subresource:
            path = f"{path}/{subresource}"
        try:
            return await self._call("PATCH", path, body=patch, content_type=MERGE_PATCH)
        except KubeApiError as exc:
            if exc.status == 404 and tolerate_missing:
                return None
            raise

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        """Delete in the background (dependents go too); False if it was already gone."""
        try:
            await self._call(
                "DELETE",
                path_for(api_version, kind, namespace, name),
                body={"propagationPolicy": "Background"},
            )
        except KubeApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def apply(self, desired: Obj) -> Obj:
        """Server-side apply of the whole desired object, as field manager ``recsys-operator``.

        The server then owns the bookkeeping a merge patch lacked: a field we stop sending is
        removed from the child, an unchanged apply writes nothing (same resourceVersion, no
        watch event), and ``force`` takes fields back from whoever edited them by hand.
        """
        meta = desired["metadata"]
        path = path_for(desired["apiVersion"], desired["kind"], meta["namespace"], meta["name"])
        return await self._call(
            "PATCH",
            path,
            body=desired,
            query=[("fieldManager", c.OPERATOR_NAME), ("force", "true")],
            content_type=APPLY_PATCH,
        )

    async def ensure(
        self,
        desired: Obj,
        *,
        live: Obj | None = None,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
    ) -> Outcome:
        """Make the live object match ``desired`` (server-side apply).

        ``live`` (a watch event's object) skips the write when it already contains every field
        we set: the event was caused by someone else's harmless change, or by our own apply.
        """
        log = logger or logging.getLogger(__name__)
        meta = desired["metadata"]
        api_version, kind = desired["apiVersion"], desired["kind"]
        namespace, name = meta["namespace"], meta["name"]
        if live is not None and is_subset(desired, live):
            return Outcome.UNCHANGED
        before = live or await self.get(api_version, kind, namespace, name)
        after = await self.apply(desired)
        if before is None:
            log.info("created %s/%s", kind, name)
            return Outcome.CREATED
        version = (after.get("metadata") or {}).get("resourceVersion")
        if version == (before.get("metadata") or {}).get("resourceVersion"):
            return Outcome.UNCHANGED
        log.info("applied %s/%s (drift or spec change)", kind, name)
        return Outcome.PATCHED
