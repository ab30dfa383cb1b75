"""`recsys up` as a newcomer sees it: one log format for every process (uvicorn's lines
included), each line naming its component, start and stop of each child, and a last
start-up line naming the api, the collector and the demo page; JSON lines by a setting."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from services.common.settings import Settings
from tests.e2e.processes import Deployment, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.backends("embedded")]

COMPONENTS = {"up", "api", "collector", "trainer"}
TEXT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) "
    r"\[(?P<component>[a-z]+)\] [\w.]+: "
)


def up_log(deployment: Deployment) -> str:
    return (deployment.workdir / "up.log").read_text()


def start(settings: Settings, workdir: Path, **env: str) -> Deployment:
    deployment = Deployment(settings, workdir, extra_env=env)
    deployment.start_all()
    wait_until(lambda: "recsys is up" in up_log(deployment), 30, lambda: up_log(deployment))
    return deployment


def test_text_logs_name_their_component_and_the_addresses(
    settings: Settings, tmp_path: Path
) -> None:
    deployment = start(settings, tmp_path)
    deployment.stop_all()
    lines = up_log(deployment).splitlines()
    components = set()
    for line in lines:
        match = TEXT_LINE.match(line)
        assert match, f"not in the common format: {line!r}"
        components.add(match["component"])
    assert components == COMPONENTS, components
    assert any("uvicorn" in line and "[api]" in line for line in lines)  # uvicorn's own
    (ready,) = [line for line in lines if "recsys is up" in line]
    for address in (deployment.api, deployment.collector, f"{deployment.api}/"):
        assert address in ready
    text = "\n".join(lines)
    for child in ("api", "collector", "trainer"):
        assert f"started {child} (pid" in text
        assert f"stopping {child} (pid" in text
        assert f"stopped {child} (exit code" in text, text[-3000:]


def test_json_logs_by_a_setting(settings: Settings, tmp_path: Path) -> None:
    deployment = start(settings, tmp_path, RECSYS_LOG_FORMAT="json")
    deployment.stop_all()
    records = [json.loads(line) for line in up_log(deployment).splitlines()]
    assert {r["component"] for r in records} == COMPONENTS
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    assert any(r["message"].startswith("recsys is up") for r in records)
