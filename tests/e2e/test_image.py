"""The image built from the Dockerfile: its dependency layer survives a source-only change.

The dependency stage copies only pyproject.toml and uv.lock, so editing Python source must
rebuild nothing but the final layers. The image script tags that stage
(`localhost/aitrading-deps:e2e`); here a copy of the build context with one source file
changed is built to the same stage, which must come entirely from the layer cache.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO

BUILDAH = [
    "buildah",
    "--root",
    str(REPO / ".cache/buildah/root"),
    "--runroot",
    str(REPO / ".cache/buildah/run"),
]


def _image_id(name: str) -> str | None:
    found = subprocess.run(
        [*BUILDAH, "images", "--quiet", "--no-trunc", name], capture_output=True, text=True, check=False
    )
    return found.stdout.strip() or None if found.returncode == 0 else None


def test_dependency_layer_is_reused_after_a_source_only_change(tmp_path: Path) -> None:
    if shutil.which("buildah") is None:
        pytest.skip("buildah is not installed (scripts/build-test-images.sh needs it)")
    before = _image_id("localhost/aitrading-deps:e2e")
    if before is None:
        pytest.skip("no dependency stage in the local buildah store: run `make image` first")
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode().split("\0")
    context = tmp_path / "context"
    for name in filter(None, files):
        if (REPO / name).is_file():
            (context / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, context / name)
    changed = context / "core/__init__.py"
    changed.write_text(changed.read_text() + "\n# a source-only change\n")
    args = [
        "--isolation", "chroot", "--network", "host", "--pull-never", "--layers",
        "--build-arg", "PYTHON_IMAGE=docker.io/library/python:3.11-slim",
        "--build-arg", "UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9",
    ]
    deps = subprocess.run(
        [*BUILDAH, "bud", *args, "--target", "deps", "-t", "localhost/aitrading-deps:probe", str(context)],
        capture_output=True, text=True, check=False,
    )
    assert deps.returncode == 0, deps.stderr[-3000:]
    assert _image_id("localhost/aitrading-deps:probe") == before, deps.stdout[-3000:]
    assert "uv sync" in deps.stdout and "Using cache" in deps.stdout, deps.stdout[-3000:]
    full = subprocess.run(
        [*BUILDAH, "bud", *args, "-t", "localhost/aitrading:probe", str(context)],
        capture_output=True, text=True, check=False,
    )
    assert full.returncode == 0, full.stderr[-3000:]
    # The source change does reach the final image: it is not served stale from the cache.
    assert _image_id("localhost/aitrading:probe") != _image_id("docker.io/library/aitrading:e2e")
    subprocess.run([*BUILDAH, "rmi", "localhost/aitrading-deps:probe", "localhost/aitrading:probe"],
                   capture_output=True, check=False)
