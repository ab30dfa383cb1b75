"""One operator-wide loop that ticks every known RecSystem (training Jobs, outcome, status).

Why not a per-object ``@kopf.daemon`` (or ``@kopf.timer``): kopf puts a finalizer on every
object that has one, so that it can stop the task before the object disappears. With the
operator down (an upgrade, a crash loop, an uninstalled chart) every ``kubectl delete`` of a
RecSystem, and every deletion of its namespace, then hangs until someone removes the
finalizer by hand. kopf's maintainers decided not to make that finalizer optional
(nolar/kopf#896, #1183). Nothing here needs a last word before deletion (children go by
owner references, garbage-collected by the API server), so a finalizer buys nothing.

Instead, kopf keeps an in-memory index of the RecSystems it watches (``@kopf.index`` adds no
finalizer), and this loop starts one tick per indexed instance every ``tick_seconds``. Each
instance ticks in its own task, so a slow or failing instance delays no other; an instance is
not ticked again while its previous tick still runs (as the daemon's loop did).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

from recsys_operator.config import OperatorConfig
from recsys_operator.errors import KubeApiError
from recsys_operator.handlers.handle_scheduler_tick import scheduler_tick
from recsys_operator.kube import Kube
from recsys_operator.metrics import TICK_ERRORS

#: ``(namespace, name)`` of one RecSystem; the key of the operator's index.
InstanceKey = tuple[str, str]


async def tick_recsystems(
    instances: Callable[[], Iterable[InstanceKey]],
    kube: Kube,
    config: OperatorConfig,
    logger: logging.Logger,
) -> None:
    """Run until cancelled (or the API client is closed at shutdown)."""
    running: dict[InstanceKey, asyncio.Task[None]] = {}
    # When each instance was last fully re-applied; the first resync comes one period after
    # the operator first saw it (the create/resume handler has just applied everything).
    last_resync: dict[InstanceKey, float] = {}
    try:
        while not kube.closed:
            known = set(instances())
            now = time.monotonic()
            for key in last_resync.keys() - known:
                del last_resync[key]  # deleted: forget it (its last tick, if any, ends by itself)
            running = {key: task for key, task in running.items() if not task.done()}
            for key in known - running.keys():
                resync = now - last_resync.setdefault(key, now) >= config.resync_seconds
                running[key] = asyncio.create_task(
                    _tick_one(key, kube, config, logger, resync, last_resync),
                    name=f"recsys-tick-{key[0]}/{key[1]}",
                )
            await asyncio.sleep(config.tick_seconds)
    finally:
        for task in running.values():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*running.values(), return_exceptions=True)


class InstanceLogger(logging.LoggerAdapter[logging.Logger]):
    """Prefixes ``[namespace/name]``: kopf's per-object logger did that for the daemon, and a
    line like "could not write Secret/x-admin" says nothing without it."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        return f"[{(self.extra or {}).get('instance')}] {msg}", kwargs


async def _tick_one(
    key: InstanceKey,
    kube: Kube,
    config: OperatorConfig,
    logger: logging.Logger,
    resync: bool,
    last_resync: dict[InstanceKey, float],
) -> None:
    namespace, name = key
    log = InstanceLogger(logger, {"instance": f"{namespace}/{name}"})
    try:
        await scheduler_tick(namespace, name, kube, config, log, resync=resync)
        if resync and key in last_resync:
            last_resync[key] = time.monotonic()
    except KubeApiError as exc:
        # Not errors: the instance went with its namespace, or was deleted during the tick
        # (with no finalizer nothing waits for the tick; anything it wrote after the deletion
        # names a gone owner, and the garbage collector removes it).
        if not (exc.namespace_terminating or exc.status == 404):
            TICK_ERRORS.inc()
            log.exception("scheduler tick failed; retrying next tick")
    except Exception:
        # Keep ticking: a transient failure must not stop training for this instance.
        if kube.closed:
            return  # shutting down: the client was closed under this tick
        TICK_ERRORS.inc()
        log.exception("scheduler tick failed; retrying next tick")
