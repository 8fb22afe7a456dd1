"""Delivery files that cannot run here (no Docker, no kind) are still checked for real:
the workflow with actionlint, the e2e script's no-cluster steps, skaffold's references."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[2]
BIN = ROOT / ".cache" / "bin"


@pytest.mark.skipif(
    not (BIN / "actionlint").is_file(),
    reason="no actionlint in .cache/bin: `make helm-bin` builds it",
)
def test_workflow_passes_actionlint() -> None:
    result = subprocess.run(
        [
            str(BIN / "actionlint"),
            *sorted(str(p) for p in (ROOT / ".github/workflows").glob("*.yml")),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(
    not (BIN / "helm").is_file(), reason="no helm in .cache/bin: run `make helm-bin`"
)
def test_e2e_script_steps_that_need_no_cluster() -> None:
    env = {**os.environ, "HELM": str(BIN / "helm"), "PYTHON": sys.executable}
    result = subprocess.run(
        ["bash", "scripts/e2e-kind.sh", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rendered manifests are valid" in result.stdout


def test_skaffold_builds_the_image_deploys_the_chart_and_forwards_the_gateway() -> None:
    config = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    image = config["build"]["artifacts"][0]
    assert (ROOT / image["docker"]["dockerfile"]).is_file()
    release = config["deploy"]["helm"]["releases"][0]
    assert (ROOT / release["chartPath"] / "Chart.yaml").is_file()
    assert (
        release["setValueTemplates"]["image.repository"] == f"{{{{.IMAGE_REPO_{image['image']}}}}}"
    )
    assert config["portForward"][0]["port"] == 8000
    profiles = {p["name"]: p for p in config["profiles"]}
    assert set(profiles) == {"kind", "production"}
    for patch in profiles["production"]["patches"]:
        for values in patch["value"] if isinstance(patch["value"], list) else []:
            assert (ROOT / values).is_file()


def test_dockerfile_layers_dependencies_before_source_and_runs_as_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    deps = text.index("COPY pyproject.toml uv.lock")
    source = text.index("COPY . .")
    assert deps < source  # the dependency layer is cached apart from the source
    assert "--no-install-project" in text[deps:source]
    assert "USER 10001:10001" in text
    assert 'ENTRYPOINT ["aitrading"]' in text
