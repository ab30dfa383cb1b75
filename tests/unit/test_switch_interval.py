"""The serving processes ask for the GIL back sooner than Python's default, so a worker
thread's Python work (the item counts' refresh) cannot hold each request for 5 ms a pass."""

from __future__ import annotations

import sys
from typing import Any

import pytest
import uvicorn

from services import cli


def test_servers_run_with_a_short_switch_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, float] = {}

    def run(*_: Any, **__: Any) -> None:
        seen["interval"] = sys.getswitchinterval()

    default = sys.getswitchinterval()
    monkeypatch.setattr(uvicorn, "run", run)
    try:
        assert cli._serve("services.api.main:create_app", 0) == 0
    finally:
        sys.setswitchinterval(default)
    assert seen["interval"] == pytest.approx(cli.SWITCH_INTERVAL)
    assert default > cli.SWITCH_INTERVAL
