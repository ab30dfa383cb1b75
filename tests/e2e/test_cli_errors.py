"""Errors a person can act on: one line naming what to fix, and a non-zero exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.common.embedded_redis import EmbeddedRedis

pytestmark = pytest.mark.e2e


def recsys(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RECSYS_")}
    clean.pop("REDIS_URL", None)
    clean.pop("AMQP_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_bad_setting_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    for command in ("up", "api", "collector", "trainer"):
        result = recsys(command, env={"RECSYS_API_PORT": "abc"}, cwd=tmp_path)
        assert result.returncode != 0, command
        assert result.stderr.count("\n") == 1, result.stderr
        assert "RECSYS_API_PORT='abc'" in result.stderr and "integer" in result.stderr
        assert "Traceback" not in result.stderr


def test_every_bad_setting_is_named_at_once(tmp_path: Path) -> None:
    env = {"RECSYS_MAX_K": "0", "TRAIN_INTERVAL": "soon"}
    result = recsys("up", env=env, cwd=tmp_path)
    assert result.returncode != 0
    assert "RECSYS_MAX_K='0'" in result.stderr and "TRAIN_INTERVAL='soon'" in result.stderr


def test_a_second_instance_on_the_same_data_directory_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = EmbeddedRedis(data)  # what a running `recsys up` holds
    first.start()
    try:
        result = recsys("up", env={"RECSYS_DATA_DIR": str(data)}, cwd=tmp_path)
    finally:
        first.stop()
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("recsys:")]
    assert len(lines) == 1 and str(data / "redis") in lines[0], result.stderr
    assert "in use by another recsys" in lines[0]
    assert "Traceback" not in result.stderr
