"""Small helpers the handlers share (no kopf decorators here)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from recsys_operator import constants as c
from recsys_operator.builders import Instance
from recsys_operator.config import OperatorConfig
from recsys_operator.errors import InvalidSpecError
from recsys_operator.kube import Kube
from recsys_operator.status import condition, merge_conditions
from recsys_operator.validation import validate

Logger = logging.Logger | logging.LoggerAdapter[logging.Logger]


def utcnow() -> datetime:
    """Timezone-aware now (patched in tests that need a fixed clock)."""
    return datetime.now(UTC)


def instance_from(body: Mapping[str, Any], config: OperatorConfig) -> Instance:
    """Validated instance from a RecSystem body; raises :class:`InvalidSpecError`."""
    meta = body.get("metadata") or {}
    name = str(meta.get("name", ""))
    spec = validate(name, body.get("spec") or {})
    return Instance(
        name=name,
        namespace=str(meta.get("namespace", "")),
        uid=str(meta.get("uid", "")),
        spec=spec,
        image=spec.image or config.default_image,
    )


def invalid_status(
    error: InvalidSpecError, generation: int, previous: list[Mapping[str, Any]]
) -> dict[str, Any]:
    """Status patch reporting an invalid spec (Ready=False, reason InvalidSpec)."""
    ready = condition(
        c.COND_READY, False, "InvalidSpec", str(error), generation, utcnow(), previous
    )
    return {
        "phase": "Invalid",
        "observedGeneration": generation,
        "conditions": merge_conditions(previous, [ready]),
    }


async def patch_status(kube: Kube, body: Mapping[str, Any], status: dict[str, Any]) -> None:
    """Merge ``status`` into the RecSystem's status subresource (gone → ignored)."""
    meta = body.get("metadata") or {}
    await kube.patch(
        c.API_VERSION,
        c.KIND,
        str(meta.get("namespace")),
        str(meta.get("name")),
        {"status": status},
        subresource="status",
        tolerate_missing=True,
    )
