"""A managed child changed or vanished: put back what its RecSystem wants."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recsys_operator import constants as c
from recsys_operator.builders import build_plan
from recsys_operator.config import OperatorConfig
from recsys_operator.errors import InvalidSpecError, KubeApiError
from recsys_operator.handlers.shared import Logger, instance_from
from recsys_operator.kube import Kube, Outcome


def owner_name(child: Mapping[str, Any]) -> str | None:
    """Name of the controlling RecSystem, if any."""
    for ref in (child.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == c.KIND and ref.get("apiVersion", "").startswith(c.GROUP + "/"):
            return str(ref.get("name"))
    return None


async def correct_child_drift(
    event_type: str | None,
    child: Mapping[str, Any],
    kube: Kube,
    config: OperatorConfig,
    logger: Logger,
) -> Outcome | None:
    """Re-apply the desired version of ``child``; None when it is not ours to fix."""
    owner = owner_name(child)
    meta = child.get("metadata") or {}
    namespace = str(meta.get("namespace", ""))
    if owner is None:
        return None
    body = await kube.get(c.API_VERSION, c.KIND, namespace, owner)
    if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
        return None  # the owner is going away; garbage collection removes the child
    try:
        inst = instance_from(body, config)
    except InvalidSpecError:
        return None  # reported on the RecSystem by the main handler
    key = (child.get("apiVersion"), child.get("kind"), meta.get("name"))
    for desired in build_plan(inst).apply:
        if (desired["apiVersion"], desired["kind"], desired["metadata"]["name"]) != key:
            continue
        live = None if event_type == "DELETED" else dict(child)
        try:
            result = await kube.ensure(desired, live=live, logger=logger)
        except KubeApiError as exc:
            if exc.namespace_terminating:
                return None  # deleted by the namespace controller: leave it gone
            raise
        if result is not Outcome.UNCHANGED:
            logger.info("corrected drift of %s/%s: %s", child.get("kind"), meta.get("name"), result)
        return result
    return None
