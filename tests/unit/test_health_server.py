"""The probe listener tells the truth: a wedged serving loop fails /livez, a failing check
fails /healthcheck within the refresh period, and neither waits for the serving loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from services.common import health_server
from services.common.health_server import Check, Health, probe_listener
from tests.conftest import free_port

STALL_AFTER = 0.5
REFRESH = 0.2


class Switch:
    """A check whose answer the test sets."""

    def __init__(self) -> None:
        self.answer: Health = ({"status": "ok"}, 200)
        self.calls = 0

    async def check(self) -> Health:
        self.calls += 1
        return self.answer

    @asynccontextmanager
    async def open(self) -> AsyncIterator[Check]:
        yield self.check


async def get(url: str) -> httpx.Response:
    """A probe from another thread: the test's own loop is the one being watched."""
    return await asyncio.to_thread(httpx.get, url, timeout=5)


async def test_livez_fails_while_the_serving_loop_is_wedged_and_recovers() -> None:
    port, switch = free_port(), Switch()
    async with probe_listener(
        "127.0.0.1", port, switch.open, refresh=REFRESH, stall_after=STALL_AFTER
    ):
        url = f"http://127.0.0.1:{port}"
        assert (await get(f"{url}/livez")).status_code == 200
        # Wedge this loop (the one the listener watches) and probe from a thread meanwhile:
        # the probe must be answered (by the listener's own loop) and say the loop is stuck.
        probe = asyncio.get_running_loop().run_in_executor(
            None, lambda: (time.sleep(STALL_AFTER * 2), httpx.get(f"{url}/livez", timeout=5))[1]
        )
        time.sleep(STALL_AFTER * 4)  # blocks the loop, as a wedged handler would
        wedged = await probe
        assert wedged.status_code == 503, wedged.text
        assert "event_loop" in wedged.json()["down"]
        # Readiness is not liveness: the dependencies are fine, so /healthcheck stays 200.
        assert (await get(f"{url}/healthcheck")).status_code == 200
        await asyncio.sleep(0.1)  # one turn: the heartbeat beats again
        assert (await get(f"{url}/livez")).status_code == 200


async def test_healthcheck_follows_the_check_within_the_refresh_period() -> None:
    port, switch = free_port(), Switch()
    async with probe_listener(
        "127.0.0.1", port, switch.open, refresh=REFRESH, stall_after=STALL_AFTER
    ):
        url = f"http://127.0.0.1:{port}/healthcheck"
        assert (await get(url)).json() == {"status": "ok"}
        switch.answer = ({"status": "unavailable", "down": {"redis": "refused"}}, 503)
        changed = time.monotonic()
        while (answer := await get(url)).status_code != 503:
            assert time.monotonic() - changed < REFRESH + 1.0, "the outage was not reported"
            await asyncio.sleep(0.02)
        assert answer.json()["down"] == {"redis": "refused"}
        # The check runs on its own schedule, not once per probe.
        calls, started = switch.calls, time.monotonic()
        for _ in range(20):
            await get(url)
        assert switch.calls - calls <= (time.monotonic() - started) / REFRESH + 2
        assert (await get(f"http://127.0.0.1:{port}/nothing")).status_code == 404


async def test_a_port_in_use_fails_the_start_up_naming_it() -> None:
    port, switch = free_port(), Switch()
    async with probe_listener("127.0.0.1", port, switch.open, refresh=1, stall_after=1):
        with pytest.raises(OSError, match=f"probe port 127.0.0.1:{port}"):
            async with probe_listener("127.0.0.1", port, switch.open, refresh=1, stall_after=1):
                pass


async def test_port_zero_opens_nothing() -> None:
    switch = Switch()
    async with probe_listener("127.0.0.1", 0, switch.open, refresh=REFRESH, stall_after=1):
        await asyncio.sleep(REFRESH * 2)
    assert switch.calls == 0


async def test_a_check_that_hangs_does_not_leave_an_old_answer_standing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past its own timeouts a check says nothing: the last 200 is not repeated forever."""
    monkeypatch.setattr(health_server, "STALE_AFTER", 0.3)
    hang = asyncio.Event()

    async def check() -> Health:
        if hang.is_set():
            await asyncio.Event().wait()  # never returns, as a check stuck past its timeouts
        return {"status": "ok"}, 200

    refreshed = health_server.RefreshedCheck(check, REFRESH)
    running = asyncio.create_task(refreshed.run())
    try:
        assert await refreshed.latest() == ({"status": "ok"}, 200)
        hang.set()
        await asyncio.sleep(REFRESH + 0.3 + 0.2)
        body, status = await refreshed.latest()
        assert status == 503 and "no check finished" in str(body["down"])
    finally:
        running.cancel()
