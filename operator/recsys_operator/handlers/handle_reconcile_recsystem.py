"""Create/update/resume (and periodic resync): make every child match the spec."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from recsys_operator import constants as c
from recsys_operator.builders import Instance, Obj, ObjectRef, build_plan
from recsys_operator.builders.common import selector_labels
from recsys_operator.builders.secret import build_admin_secret
from recsys_operator.builders.storage import data_pvc_owner_references
from recsys_operator.errors import KubeApiError
from recsys_operator.handlers.shared import Logger, utcnow
from recsys_operator.kube import Kube, Outcome
from recsys_operator.metrics import CHILD_WRITES, RECONCILE_SECONDS
from recsys_operator.status import condition, deployment_available

# Kinds whose CRDs may be missing (no Prometheus Operator): a 404 there is reported, not fatal.
OPTIONAL_KINDS = frozenset({"ServiceMonitor", "PrometheusRule"})


@dataclass
class ApplyResult:
    """What one pass over the desired state did."""

    changed: int = 0
    #: Reported in the Ready message, not failures (e.g. monitoring CRDs missing).
    warnings: list[str] = field(default_factory=list)
    #: ``Kind/name: error`` of every child that could not be written.
    failures: list[str] = field(default_factory=list)


async def apply_children(inst: Instance, kube: Kube, logger: Logger) -> ApplyResult:
    """Send the whole desired state, child by child.

    A failing child is recorded and the others are still applied: one refused object (a name
    taken by a foreign Deployment, a quota, a webhook) must not freeze the whole instance.
    """
    plan = build_plan(inst)
    result = ApplyResult()

    async def attempt(what: str, write: Callable[[], Awaitable[bool]], optional: bool) -> None:
        try:
            if await write():
                result.changed += 1
        except KubeApiError as exc:
            if exc.namespace_terminating:
                return  # not a failure: the whole instance is being deleted with its namespace
            if optional and exc.status == 404:
                result.warnings.append(f"{what} not written: monitoring.coreos.com CRDs missing")
                return
            logger.warning("could not write %s: %s", what, exc)
            result.failures.append(f"{what}: {exc}")
            CHILD_WRITES.labels(what.split("/", 1)[0], "failed").inc()

    def ensure(obj: Obj) -> Callable[[], Awaitable[bool]]:
        async def write() -> bool:
            outcome = await kube.ensure(obj, logger=logger)
            if outcome is Outcome.UNCHANGED:
                return False
            CHILD_WRITES.labels(obj["kind"], outcome.value).inc()
            return True

        return write

    def create_secret(obj: Obj) -> Callable[[], Awaitable[bool]]:
        async def write() -> bool:
            # Create and take 409 for "already there", instead of reading it first: the
            # operator holds no `get` on Secrets, so it can read none (in any namespace it
            # serves). The price: one refused create per resync once the Secret exists.
            if await kube.create(obj, tolerate_conflict=True) is None:
                return False
            logger.info("created Secret/%s", obj["metadata"]["name"])
            CHILD_WRITES.labels("Secret", "created").inc()
            return True

        return write

    def data_pvc(desired: Obj) -> Callable[[], Awaitable[bool]]:
        async def write() -> bool:
            outcome = await ensure_data_pvc(inst, desired, kube, logger)
            if outcome is Outcome.UNCHANGED:
                return False
            CHILD_WRITES.labels("PersistentVolumeClaim", outcome.value).inc()
            return True

        return write

    def delete(ref: ObjectRef) -> Callable[[], Awaitable[bool]]:
        async def write() -> bool:
            if await kube.delete(ref.api_version, ref.kind, inst.namespace, ref.name):
                logger.info("deleted %s/%s (no longer wanted)", ref.kind, ref.name)
                CHILD_WRITES.labels(ref.kind, "deleted").inc()
                return True
            return False

        return write

    if inst.spec.admin_token.secret_ref is None:
        # Generated once; create-only so the token stays stable across reconciles.
        secret = build_admin_secret(inst, secrets.token_urlsafe(32))
        await attempt(f"Secret/{secret['metadata']['name']}", create_secret(secret), False)
    pvc = plan.data_pvc
    await attempt(f"PersistentVolumeClaim/{pvc['metadata']['name']}", data_pvc(pvc), False)
    for obj in plan.apply:
        what = f"{obj['kind']}/{obj['metadata']['name']}"
        await attempt(what, ensure(obj), obj["kind"] in OPTIONAL_KINDS)
    for ref in plan.absent:
        await attempt(f"{ref.kind}/{ref.name}", delete(ref), ref.kind in OPTIONAL_KINDS)
    return result


async def ensure_data_pvc(inst: Instance, desired: Obj, kube: Kube, logger: Logger) -> Outcome:
    """Create the claim if absent; else make only its owner references follow the policy.

    Its spec is never patched (mostly immutable). The owner reference is: switching
    ``storage.retainPolicy`` on a live RecSystem adds or removes it, and a RecSystem
    re-created with the same name adopts (Delete) or just uses (Retain) a retained claim.
    """
    name = desired["metadata"]["name"]
    live = await kube.get("v1", "PersistentVolumeClaim", inst.namespace, name)
    if live is None:
        if await kube.create(desired, tolerate_conflict=True) is None:
            return Outcome.UNCHANGED  # created concurrently (a resync and a handler)
        logger.info("created PersistentVolumeClaim/%s", name)
        return Outcome.CREATED
    meta = live.get("metadata") or {}
    current = list(meta.get("ownerReferences") or [])
    wanted = data_pvc_owner_references(inst, current)
    if wanted == current:
        return Outcome.UNCHANGED
    # Guarded by resourceVersion: a concurrent change to the references fails with 409 and
    # is retried (kopf's backoff, the next resync) instead of being overwritten.
    patch = {
        "metadata": {
            "ownerReferences": wanted or None,
            "resourceVersion": meta.get("resourceVersion"),
        }
    }
    await kube.patch("v1", "PersistentVolumeClaim", inst.namespace, name, patch)
    logger.info(
        "PersistentVolumeClaim/%s: %s (storage.retainPolicy %s)",
        name,
        "owned by the RecSystem" if len(wanted) > len(current) else "owner reference updated",
        inst.spec.storage.retain_policy,
    )
    return Outcome.PATCHED


def reconciled_condition(
    result: ApplyResult, generation: int, previous: list[Mapping[str, Any]]
) -> dict[str, Any]:
    """``Reconciled``: True once every child matches this generation, else which failed."""
    if result.failures:
        message = "; ".join(result.failures)
        return condition(
            c.COND_RECONCILED, False, "ApplyFailed", message[:1000], generation, utcnow(), previous
        )
    return condition(
        c.COND_RECONCILED, True, "Applied", "every child matches the spec", generation, utcnow(),
        previous,
    )  # fmt: skip


async def readiness(
    inst: Instance,
    kube: Kube,
    generation: int,
    previous: list[Mapping[str, Any]],
    warnings: list[str],
) -> dict[str, Any]:
    """Status update derived from the Deployments' availability (``conditions``: by type)."""
    missing: list[str] = []
    for component in (c.API, c.COLLECTOR, c.INGEST):
        deployment = await kube.get("apps/v1", "Deployment", inst.namespace, inst.child(component))
        if not deployment_available(deployment):
            missing.append(component)
    api = await kube.get("apps/v1", "Deployment", inst.namespace, inst.child(c.API))
    replicas = int(((api or {}).get("status") or {}).get("replicas") or 0)
    if missing:
        ready = condition(
            c.COND_READY,
            False,
            "Progressing",
            f"waiting for available replicas: {', '.join(missing)}",
            generation,
            utcnow(),
            previous,
        )
    else:
        message = "all components available"
        if warnings:
            message += "; " + "; ".join(warnings)
        ready = condition(c.COND_READY, True, "Available", message, generation, utcnow(), previous)
    selector = ",".join(f"{k}={v}" for k, v in selector_labels(inst, c.API).items())
    return {
        "phase": "Ready" if not missing else "Progressing",
        "observedGeneration": generation,
        "replicas": replicas,
        "selector": selector,
        "conditions": [ready],
    }


async def reconcile_recsystem(
    inst: Instance,
    kube: Kube,
    generation: int,
    previous_conditions: list[Mapping[str, Any]],
    logger: Logger,
) -> tuple[dict[str, Any], ApplyResult]:
    """Apply the desired state; return the status update to record and what was applied.

    The top-level ``observedGeneration`` is only claimed when every child was written.
    """
    with RECONCILE_SECONDS.time():
        result = await apply_children(inst, kube, logger)
    if result.changed:
        logger.info(
            "reconciled %s/%s: %d object(s) changed", inst.namespace, inst.name, result.changed
        )
    return await status_after_apply(inst, kube, generation, previous_conditions, result), result


async def status_after_apply(
    inst: Instance,
    kube: Kube,
    generation: int,
    previous: list[Mapping[str, Any]],
    result: ApplyResult,
) -> dict[str, Any]:
    """Readiness plus the ``Reconciled`` condition for one pass of ``apply_children``."""
    update = await readiness(inst, kube, generation, previous, result.warnings)
    update["conditions"] = [
        *update["conditions"],
        reconciled_condition(result, generation, previous),
    ]
    if result.failures:
        del update["observedGeneration"]
    return update
