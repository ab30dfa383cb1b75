"""`make run` installs only what runs, visibly; `make test` what the tests need; a dev
install serves both. The real pip is replaced by a recorder in a scratch venv: what is
checked is the script's choice of arguments, not pip (a real install takes minutes)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RECORDER = """import sys, pathlib
log = pathlib.Path(__file__).resolve().parents[5] / "pip-calls.txt"
with log.open("a") as out:
    out.write(" ".join(sys.argv[1:]) + "\\n")
"""

pytestmark = pytest.mark.e2e


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the script and pyproject.toml, with a venv whose pip only records."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "bootstrap.sh", tmp_path / "scripts" / "bootstrap.sh")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", tmp_path / ".venv"], check=True)
    (site,) = (tmp_path / ".venv" / "lib").glob("python3.*/site-packages")
    (site / "pip").mkdir()
    (site / "pip" / "__init__.py").write_text("")
    (site / "pip" / "__main__.py").write_text(RECORDER)
    return tmp_path


def bootstrap(project: Path, *args: str) -> tuple[list[str], str]:
    result = subprocess.run(
        ["bash", str(project / "scripts" / "bootstrap.sh"), *args],
        cwd=project,
        env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable, "HOME": str(project)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    log = project / "pip-calls.txt"
    calls = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return calls, result.stderr


def test_run_installs_the_runtime_only_with_progress(project: Path) -> None:
    calls, stderr = bootstrap(project, "runtime")
    (install,) = [c for c in calls if "-e" in c.split()]
    assert install.split()[-1] == "."  # no [dev] extras: no mypy, selenium, matplotlib
    assert "--quiet" not in install.split() and "--progress-bar on" in install
    assert "installing recsys (runtime dependencies)" in stderr
    assert bootstrap(project, "runtime")[0] == []  # done once


def test_test_installs_dev_and_a_dev_install_serves_run(project: Path) -> None:
    calls, _ = bootstrap(project)
    assert [c.split()[-1] for c in calls if "-e" in c.split()] == [".[dev]"]
    assert bootstrap(project, "runtime")[0] == []
    assert bootstrap(project)[0] == []


def test_after_a_runtime_install_test_adds_the_dev_tools(project: Path) -> None:
    bootstrap(project, "runtime")
    calls, _ = bootstrap(project)
    assert [c.split()[-1] for c in calls if "-e" in c.split()] == [".[dev]"]


def test_make_run_uses_the_runtime_install() -> None:
    dry = subprocess.run(
        ["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "./scripts/bootstrap.sh runtime" in dry and "recsys up" in dry
