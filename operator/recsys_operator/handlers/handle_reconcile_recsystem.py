"""Create/update/resume (and periodic resync): make every child match the spec."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from recsys_operator import constants as c
from recsys_operator.builders import Instance, build_plan
from recsys_operator.builders.common import selector_labels
from recsys_operator.builders.secret import build_admin_secret
from recsys_operator.errors import KubeApiError
from recsys_operator.handlers.shared import Logger, utcnow
from recsys_operator.kube import Kube, Outcome
from recsys_operator.status import condition, deployment_available

# Kinds whose CRDs may be missing (no Prometheus Operator): a 404 there is reported, not fatal.
OPTIONAL_KINDS = frozenset({"ServiceMonitor", "PrometheusRule"})


async def apply_children(inst: Instance, kube: Kube, logger: Logger) -> tuple[int, list[str]]:
    """Send the whole desired state; returns (objects changed, warnings)."""
    plan = build_plan(inst)
    changed = 0
    warnings: list[str] = []
    if inst.spec.admin_token.secret_ref is None:
        # Generated once; create-only so the token stays stable across reconciles.
        secret = build_admin_secret(inst, secrets.token_urlsafe(32))
        if await kube.ensure(secret, update=False, logger=logger) is Outcome.CREATED:
            changed += 1
    for obj in plan.create_only:
        if await kube.ensure(obj, update=False, logger=logger) is not Outcome.UNCHANGED:
            changed += 1
    for obj in plan.apply:
        try:
            if await kube.ensure(obj, logger=logger) is not Outcome.UNCHANGED:
                changed += 1
        except KubeApiError as exc:
            if obj["kind"] in OPTIONAL_KINDS and exc.status == 404:
                warnings.append(f"{obj['kind']} not created: monitoring.coreos.com CRDs missing")
                continue
            raise
    for ref in plan.absent:
        try:
            if await kube.delete(ref.api_version, ref.kind, inst.namespace, ref.name):
                logger.info("deleted %s/%s (no longer wanted)", ref.kind, ref.name)
                changed += 1
        except KubeApiError as exc:
            if ref.kind in OPTIONAL_KINDS and exc.status == 404:
                continue
            raise
    return changed, warnings


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
) -> dict[str, Any]:
    """Apply the desired state; return the status update to record (see ``update_status``)."""
    changed, warnings = await apply_children(inst, kube, logger)
    if changed:
        logger.info("reconciled %s/%s: %d object(s) changed", inst.namespace, inst.name, changed)
    return await readiness(inst, kube, generation, previous_conditions, warnings)
