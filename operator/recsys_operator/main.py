"""kopf wiring: the only module with decorators; every handler delegates to ``handlers/``.

Run with ``recsys-operator`` (console script) or ``kopf run -m recsys_operator.main``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import kopf

from recsys_operator import config as config_module
from recsys_operator import constants as c
from recsys_operator import metrics
from recsys_operator.errors import InvalidSpecError, KubeApiError
from recsys_operator.handlers.handle_child_drift import correct_child_drift
from recsys_operator.handlers.handle_reconcile_recsystem import reconcile_recsystem
from recsys_operator.handlers.handle_scheduler_tick import scheduler_tick
from recsys_operator.handlers.shared import instance_from, invalid_status, update_status
from recsys_operator.kube import Kube
from recsys_operator.metrics import RECONCILES, TICK_ERRORS

# Child kinds watched for drift (the label filter keeps foreign objects out).
CHILD_RESOURCES = (
    ("", "v1", "configmaps"),
    ("", "v1", "services"),
    ("apps", "v1", "deployments"),
    ("autoscaling", "v2", "horizontalpodautoscalers"),
    ("policy", "v1", "poddisruptionbudgets"),
    ("networking.k8s.io", "v1", "ingresses"),
    ("batch", "v1", "cronjobs"),
)
MANAGED = {c.LABEL_MANAGED_BY: c.OPERATOR_NAME}


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: Any, **_: Any) -> None:
    """Load config, open the API client, and tune kopf (each setting says why)."""
    memo.config = memo.get("config") or config_module.load()
    memo.kube = memo.get("kube") or await Kube.from_environment()
    # Keep kopf's bookkeeping in our own annotation namespace, and out of .status.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=c.PERSISTENCE_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=c.PERSISTENCE_PREFIX, key="last-handled-configuration"
    )
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
    logger.info("recsys-operator started (default image %s)", memo.config.default_image)


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    """Close the API client's connection pool."""
    kube = memo.get("kube")
    if kube is not None:
        await kube.close()


@kopf.on.probe(id="api")
async def probe_api(memo: kopf.Memo, **_: Any) -> bool:
    """Liveness: the operator's own API client is configured (kopf adds its own checks)."""
    return memo.get("kube") is not None


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
    # Not through kopf's `patch`: the scheduler daemon writes status concurrently, and
    # only a resourceVersion-guarded read-merge-write keeps both writers' conditions.
    await update_status(memo.kube, body, update)
    RECONCILES.labels("failure" if applied.failures else "success").inc()
    if applied.failures:
        kopf.warn(body, reason="ApplyFailed", message="; ".join(applied.failures)[:1000])
        # Retried with kopf's backoff; the healthy children are already in place.
        raise kopf.TemporaryError(f"{len(applied.failures)} child object(s) failed", delay=30)
    if applied.changed:
        kopf.info(body, reason="Reconciled", message=f"{applied.changed} child object(s) written")


@kopf.daemon(c.GROUP, c.VERSION, c.PLURAL, id="scheduler", cancellation_timeout=10)
async def scheduler(
    stopped: kopf.DaemonStopped,
    name: str,
    namespace: str | None,
    memo: kopf.Memo,
    logger: Any,
    **_: Any,
) -> None:
    """Per-instance loop: training Jobs, outcome, readiness; full resync now and then."""
    last_resync = time.monotonic()
    # At exit kopf stops the daemons first, but a worker still draining its queue (up to
    # `settings.queueing.exit_timeout`) re-spawns them, and kopf then treats the new ones as
    # "hung" tasks. The `closed` check ends such a late restart once the cleanup handler has
    # closed the client, instead of erroring until killed.
    while not stopped and not memo.kube.closed:
        resync = time.monotonic() - last_resync >= memo.config.resync_seconds
        try:
            await scheduler_tick(
                namespace or "", name, memo.kube, memo.config, logger, resync=resync
            )
            if resync:
                last_resync = time.monotonic()
        except KubeApiError as exc:
            if not exc.namespace_terminating:  # else: the daemon is about to be stopped
                TICK_ERRORS.inc()
                logger.exception("scheduler tick failed; retrying next tick")
        except Exception:
            # Keep ticking: a transient API failure must not stop training for this instance.
            TICK_ERRORS.inc()
            logger.exception("scheduler tick failed; retrying next tick")
        await _sleep_unless_stopped(stopped, memo.config.tick_seconds)


async def _sleep_unless_stopped(stopped: kopf.DaemonStopped, seconds: float) -> None:
    """Sleep up to ``seconds``, waking at once when kopf stops the daemon.

    Not ``await stopped.wait(seconds)``: kopf runs that timed wait in a helper task which
    *ends with TimeoutError* whenever the time is up. If that happens in a re-spawned daemon
    during shutdown, kopf collects the helper among the hung tasks and re-raises its error,
    so the operator exits with a bare TimeoutError on SIGTERM. Waiting without a time limit
    and timing out in our own task leaves the helper nothing but a normal end or a cancel.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stopped.wait()


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
