"""The README holds: its quickstart runs as written, its settings table is the Settings
class's, its links lead somewhere."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from services.common.settings import Settings
from services.common.settings_doc import field_comments, replace_table
from tests.e2e.processes import Deployment

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
# A person types the next command seconds later; the product promises a like is served
# within about a second (the ingester stores it asynchronously after the 200).
PAUSE = 1.0


def quickstart_commands() -> list[tuple[str, str]]:
    """(command, the "# -> " answer written under it) of the quickstart block."""
    text = README.read_text()
    block = text.split("<!-- quickstart:start -->")[1].split("<!-- quickstart:end -->")[0]
    body = block.split("```sh\n")[1].split("```")[0]
    commands: list[tuple[str, str]] = []
    current = ""
    for line in body.splitlines():
        if line.startswith("# -> "):
            commands.append((current, line.removeprefix("# -> ")))
            current = ""
        elif line and not line.startswith("#"):
            current += line.rstrip("\\").rstrip() + " "
    assert commands, "no commands with answers in the quickstart"
    return commands


def matches(expected: object, actual: object) -> bool:
    """The written answer, where "..." stands for any value and lists in any order."""
    if expected == "...":
        return True
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(
            matches(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list) and isinstance(actual, list):
        return sorted(map(str, expected)) == sorted(map(str, actual))
    return expected == actual


@pytest.mark.e2e
@pytest.mark.backends("embedded")
def test_the_quickstart_runs_as_written(settings: Settings, tmp_path: Path) -> None:
    deployment = Deployment(settings, tmp_path)
    deployment.start_all()
    try:
        for command, written in quickstart_commands():
            command = command.replace("http://127.0.0.1:5001", deployment.api)
            command = command.replace("http://127.0.0.1:5000", deployment.collector)
            result = subprocess.run(
                ["bash", "-c", command], capture_output=True, text=True, timeout=30, check=True
            )
            answer = json.loads(result.stdout)
            assert matches(json.loads(written), answer), (command, written, answer)
            time.sleep(PAUSE)
    finally:
        deployment.stop_all()


def test_the_settings_table_is_generated_from_the_settings_class() -> None:
    text = README.read_text()
    assert replace_table(text) == text, (
        "README's settings table differs from services/common/settings.py: run "
        "`python -m services.common.settings_doc README.md`"
    )
    undocumented = [name for name, comment in field_comments().items() if not comment]
    assert set(field_comments()) == set(Settings.model_fields)
    assert not undocumented, f"settings without a comment in the Settings class: {undocumented}"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_the_readmes_links_lead_somewhere() -> None:
    text = README.read_text()
    anchors = {slug(h) for h in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}
    for target in re.findall(r"\]\(([^)]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        if target.startswith("#"):
            assert target[1:] in anchors, f"no heading for {target}"
        else:
            assert (ROOT / target.split("#")[0]).exists(), f"no file {target}"


def test_the_files_the_readme_names_exist() -> None:
    """`services/core/bandit.py` and the like: a rename must take the README along."""
    text = README.read_text()
    named = set(re.findall(r"`([\w./-]+\.(?:py|sh|md|yaml|json|toml))`", text))
    # Some are named inside a list under their package (`static/...` of services/api).
    bases = [ROOT, ROOT / "services", ROOT / "services" / "api", ROOT / "operator"]
    paths = [n for n in named if "/" in n and not n.startswith("/")]  # "/openapi.json": a URL
    missing = [n for n in paths if not any((b / n).exists() for b in bases)]
    assert not missing, missing
