"""Stopping the operator (SIGTERM) while RecSystems are live and their ticks under way.

Regression: while the scheduler was a per-object kopf daemon, kopf re-spawned daemons as it
drained its queues at exit and re-raised any error of the tasks left over (a timed
`stopped.wait(n)` helper ending with TimeoutError made `kopf.operator()` exit with a bare
TimeoutError). The operator-wide loop that replaced it must end as cleanly, mid-tick or not.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from tests.operator.conftest import Cluster, sample_recsystem

CR = ("recsys.io/v1alpha1", "RecSystem")
JOB = ("batch/v1", "Job")
NAMES = ("a", "b", "c")


@pytest.fixture()
def exit_timeout() -> float:
    """kopf's default: workers still busy at SIGTERM get 2 s to process what they hold."""
    return 2.0


@pytest.mark.parametrize("churn", [False, True], ids=["quiet", "events-during-stop"])
async def test_stop_with_live_recsystems_exits_cleanly(cluster: Cluster, churn: bool) -> None:
    # Several instances so that some tick is under way or waiting whenever the stop comes.
    for name in NAMES:
        await cluster.create(sample_recsystem(name, training={"intervalSeconds": 30}))
    await cluster.eventually(
        lambda: cluster.list(*JOB), message="the ticks to run (a training Job each)"
    )

    async def touch_forever() -> None:
        # Busy workers with queued events when the stop comes: kopf lets them drain for
        # `exit_timeout` after the cleanup handler has stopped the scheduler loop.
        for i in range(10**6):
            for name in NAMES:
                await cluster.patch(*CR, name, {"metadata": {"annotations": {"touch": str(i)}}})
            await asyncio.sleep(0.01)

    toucher = asyncio.create_task(touch_forever()) if churn else None
    try:
        await asyncio.sleep(0.3)
        await cluster.operator.stop()  # asserts that kopf.operator() returned without an error
    finally:
        if toucher is not None:
            toucher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await toucher
