"""kopf wiring: the only module with decorators; every handler delegates to ``handlers/``.

Run with ``recsys-operator`` (console script) or ``kopf run -m recsys_operator.main``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import kopf

from recsys_operator import config as config_module
from recsys_operator import constants as c
from recsys_operator import metrics
from recsys_operator.errors import InvalidSpecError
from recsys_operator.handlers.handle_child_drift import correct_child_drift
from recsys_operator.handlers.handle_reconcile_recsystem import reconcile_recsystem
from recsys_operator.handlers.handle_tick_recsystems import InstanceKey, tick_recsystems
from recsys_operator.handlers.shared import instance_from, invalid_status, update_status
from recsys_operator.kube import Kube
from recsys_operator.metrics import RECONCILES

# Child kinds watched for drift (the label filter keeps foreign objects out).
CHILD_RESOURCES = (
    ("", "v1", "configmaps"),
    ("", "v1", "services"),
    ("apps", "v1", "deployments"),
    ("autoscaling", "v2", "horizontalpodautoscalers"),
    ("policy", "v1", "poddisruptionbudgets"),
    ("networking.k8s.io", "v1", "ingresses"),
    ("networking.k8s.io", "v1", "networkpolicies"),
    ("batch", "v1", "cronjobs"),
)
MANAGED = {c.LABEL_MANAGED_BY: c.OPERATOR_NAME}
# The scheduler loop outlives the startup handler: kopf's per-activity logger would name it.
TICK_LOGGER = logging.getLogger("recsys_operator.scheduler")


@kopf.on.startup()
async def startup(
    settings: kopf.OperatorSettings, memo: kopf.Memo, logger: Any, **kwargs: Any
) -> None:
    """Load config, open the API client, tune kopf (each setting says why), start the ticks."""
    memo.config = memo.get("config") or config_module.load()
    memo.kube = memo.get("kube") or await Kube.from_environment()
    # Keep kopf's bookkeeping in our own annotation namespace, and out of .status.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=c.PERSISTENCE_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=c.PERSISTENCE_PREFIX, key="last-handled-configuration"
    )
    # No handler requires a finalizer any more (see handle_tick_recsystems: the scheduler is not
    # a per-object daemon). The name stays configured so that kopf recognises the finalizer
    # that operator versions with a daemon put on every RecSystem, and removes it on sight:
    # it removes its own finalizer from any object no handler needs it on.
    settings.persistence.finalizer = f"{c.PERSISTENCE_PREFIX}/finalizer"
    # One replica with a Recreate strategy: no peering CRD needed.
    settings.peering.standalone = True
    # Kubernetes Events only for problems; routine progress goes to the log.
    settings.posting.level = logging.WARNING
    # Re-list periodically so a silently broken watch cannot hide changes for long.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    # A dead API server connection fails fast and is retried instead of hanging a handler.
    settings.networking.request_timeout = 60
    # Retry temporary errors quickly at first, then back off.
    settings.batching.error_delays = [1, 2, 5, 10, 30, 60]
    if not memo.get("metrics_served"):
        metrics.serve(memo.config.metrics_port)
        memo.metrics_served = True
    if memo.get("ticker") is None:
        # A live view, passed by the name of the index handler below (kopf's typing of
        # activity handlers has no room for indices): kopf fills it from its watch.
        index: kopf.Index[InstanceKey, bool] = kwargs["recsystems"]
        memo.ticker = asyncio.create_task(
            tick_recsystems(lambda: list(index.keys()), memo.kube, memo.config, TICK_LOGGER),
            name="recsys-scheduler",
        )
    logger.info("recsys-operator started (default image %s)", memo.config.default_image)


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    """Stop the scheduler loop, then close the API client's connection pool."""
    ticker: asyncio.Task[None] | None = memo.get("ticker")
    if ticker is not None:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        memo.ticker = None
    kube = memo.get("kube")
    if kube is not None:
        await kube.close()


@kopf.on.probe(id="api")
async def probe_api(memo: kopf.Memo, **_: Any) -> bool:
    """Liveness: the operator's own API client is configured (kopf adds its own checks)."""
    return memo.get("kube") is not None


@kopf.on.probe(id="scheduler")
async def probe_scheduler(memo: kopf.Memo, **_: Any) -> str:
    """Liveness: the scheduler loop still runs. Unlike a kopf daemon it is not restarted by
    kopf if it dies; a probe that raises makes /healthz fail, and the kubelet restarts us."""
    ticker: asyncio.Task[None] | None = memo.get("ticker")
    if ticker is not None and ticker.done():
        raise RuntimeError("the scheduler loop has stopped")
    return "running"


@kopf.on.resume(c.GROUP, c.VERSION, c.PLURAL)
@kopf.on.create(c.GROUP, c.VERSION, c.PLURAL)
@kopf.on.update(c.GROUP, c.VERSION, c.PLURAL)
async def reconcile(
    body: kopf.Body,
    meta: kopf.Meta,
    status: kopf.Status,
    memo: kopf.Memo,
    logger: Any,
    **_: Any,
) -> None:
    """Spec created/changed/operator restarted: apply every child, record status."""
    generation = int(meta.get("generation") or 0)
    previous = list(status.get("conditions") or [])
    try:
        inst = instance_from(body, memo.config)
    except InvalidSpecError as exc:
        await update_status(memo.kube, body, invalid_status(exc, generation, previous))
        raise kopf.PermanentError(f"invalid spec: {exc}") from exc
    update, applied = await reconcile_recsystem(inst, memo.kube, generation, previous, logger)
    # Not through kopf's `patch`: the scheduler loop writes status concurrently, and
    # only a resourceVersion-guarded read-merge-write keeps both writers' conditions.
    await update_status(memo.kube, body, update)
    RECONCILES.labels("failure" if applied.failures else "success").inc()
    if applied.failures:
        kopf.warn(body, reason="ApplyFailed", message="; ".join(applied.failures)[:1000])
        # Retried with kopf's backoff; the healthy children are already in place.
        raise kopf.TemporaryError(f"{len(applied.failures)} child object(s) failed", delay=30)
    if applied.changed:
        kopf.info(body, reason="Reconciled", message=f"{applied.changed} child object(s) written")


@kopf.index(c.GROUP, c.VERSION, c.PLURAL)
async def recsystems(namespace: str | None, name: str, **_: Any) -> dict[InstanceKey, bool]:
    """Which RecSystems exist, for the scheduler loop (an index adds no finalizer)."""
    return {(namespace or "", name): True}


def _register_drift_handlers() -> None:
    for group, version, plural in CHILD_RESOURCES:
        kopf.on.event(group, version, plural, labels=MANAGED, id=f"drift-{plural}")(on_child_event)


async def on_child_event(
    type: str | None, body: kopf.Body, memo: kopf.Memo, logger: Any, **_: Any
) -> None:
    """A managed child was modified or deleted: correct it if it drifted."""
    await correct_child_drift(type, dict(body), memo.kube, memo.config, logger)


_register_drift_handlers()


def run() -> None:
    """Console entry point ``recsys-operator``."""
    config = config_module.load()
    # The services' text format (services/common/logsetup.py; not imported: the operator's
    # image ships without the services), the component fixed.
    logging.basicConfig(
        level=config.log_level,
        format="%(asctime)s %(levelname)s [operator] %(name)s: %(message)s",
    )
    namespaces = config.namespace_list
    kopf.run(
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=f"http://0.0.0.0:{config.liveness_port}/healthz",
        memo=kopf.Memo(config=config),
    )
