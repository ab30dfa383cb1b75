"""Static checks of what cannot run here (no Docker engine): Dockerfiles, kind, Tilt, scripts."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.charts.conftest import ROOT, TOOLS_DIR

DOCKERFILES = sorted((ROOT / "docker").glob("*.Dockerfile"))


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfiles_are_slim_multistage_and_non_root(path: Path) -> None:
    text = path.read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert len(stages) >= 2 and all(s == "python:3.12-slim" for s in stages)
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users and users[-1] == "10001:10001"
    assert "--from=build" in text


def test_services_image_installs_the_repository() -> None:
    text = (ROOT / "docker" / "services.Dockerfile").read_text()
    assert re.search(r"^RUN pip install \.$", text, re.MULTILINE)
    assert 'ENTRYPOINT ["recsys"]' in text


def test_kind_config_has_an_ingress_ready_node_with_host_ports() -> None:
    config = yaml.safe_load((ROOT / "kind-config.yaml").read_text())
    [node] = config["nodes"]
    assert "ingress-ready=true" in node["kubeadmConfigPatches"][0]
    ports = {(m["containerPort"], m["hostPort"]) for m in node["extraPortMappings"]}
    assert {(80, 80), (443, 443)} <= ports


def test_tiltfile_builds_both_images_and_deploys_both_charts() -> None:
    text = (ROOT / "Tiltfile").read_text()
    for needle in (
        "docker/services.Dockerfile",
        "docker/operator.Dockerfile",
        "charts/recsys-operator",
        "charts/recsys",
    ):
        assert needle in text


@pytest.mark.parametrize("script", ["kind-up.sh", "install-k8s-tools.sh"])
def test_scripts_parse(script: str) -> None:
    path = ROOT / "scripts" / script
    subprocess.run(["bash", "-n", str(path)], check=True)
    assert path.stat().st_mode & 0o111, "must be executable"


def test_install_k8s_tools_is_idempotent(helm: str) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [str(ROOT / "scripts" / "install-k8s-tools.sh"), str(TOOLS_DIR)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=True,
        timeout=60,
    )
    assert "already present" in result.stderr
    assert time.monotonic() - started < 10
    kubectl = TOOLS_DIR / "bin" / "kubectl"
    version = subprocess.run(
        [str(kubectl), "version", "--client"], capture_output=True, text=True, check=True
    )
    assert "v1.35" in version.stdout


def test_images_are_tagged_by_revision_so_pods_roll() -> None:
    kind_up = (ROOT / "scripts" / "kind-up.sh").read_text()
    assert 'TAG="${TAG:-$(revision_tag)}"' in kind_up
    assert "rev-parse --short=12 HEAD" in kind_up
    tiltfile = (ROOT / "Tiltfile").read_text()
    assert "image.tag=" not in tiltfile and "defaultServicesImage" not in tiltfile
    assert "k8s_kind('RecSystem', image_json_path='{.spec.image}')" in tiltfile


def test_kind_up_tags_a_dirty_tree_by_its_changes(tmp_path: Path) -> None:
    """The tag function itself, run on a throwaway repository: clean, then dirty twice."""
    script = (ROOT / "scripts" / "kind-up.sh").read_text()
    function = script[script.index("revision_tag() {") : script.index('TAG="${TAG')]
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)

    git("init", "-q")
    (repo / "f").write_text("1")
    git("add", "f")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")

    def tag() -> str:
        out = subprocess.run(
            ["bash", "-c", f'ROOT="{repo}"\n{function}\nrevision_tag'],
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout

    clean = tag()
    assert re.fullmatch(r"[0-9a-f]{12}", clean)
    (repo / "f").write_text("2")
    first = tag()
    (repo / "f").write_text("3")
    second = tag()
    assert first.startswith(f"{clean}-dirty-") and second.startswith(f"{clean}-dirty-")
    assert first != second


def test_release_workflow_pushes_the_images_the_charts_default_to() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    images = {
        entry["image"] for entry in workflow["jobs"]["images"]["strategy"]["matrix"]["include"]
    }
    app = yaml.safe_load((ROOT / "charts" / "recsys" / "values.yaml").read_text())
    operator = yaml.safe_load((ROOT / "charts" / "recsys-operator" / "values.yaml").read_text())
    assert images == {app["image"]["repository"], operator["image"]["repository"]}
    default = operator["operator"]["defaultServicesImage"]
    app_version = yaml.safe_load((ROOT / "charts" / "recsys" / "Chart.yaml").read_text())[
        "appVersion"
    ]
    assert default == f"{app['image']['repository']}:{app_version}"
