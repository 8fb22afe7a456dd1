"""The image built from the Dockerfile: its dependency layer survives a source-only change.

The dependency stage copies only pyproject.toml and uv.lock, so editing Python source must
rebuild nothing but the final layers. The dependency stage is built from a copy of this
checkout, then from a copy with one source file changed: the second must come entirely from
the layer cache (same image id), while the full image does pick the change up.
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
BUILD = [
    "bud",
    "--isolation=chroot",
    "--network=host",
    "--pull-never",
    "--layers",
    "--build-arg=PYTHON_IMAGE=docker.io/library/python:3.11-slim",
    "--build-arg=UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9",
]


def _image_id(name: str) -> str:
    found = subprocess.run(
        [*BUILDAH, "images", "--quiet", "--no-trunc", name],
        capture_output=True,
        text=True,
        check=True,
    )
    return found.stdout.strip()


def _build(context: Path, tag: str, *extra: str) -> str:
    built = subprocess.run(
        [*BUILDAH, *BUILD, *extra, "-t", tag, str(context)],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    return built.stdout


def _copy_checkout(target: Path) -> None:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True)
    for name in filter(None, listed.stdout.decode().split("\0")):
        if (REPO / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)


def test_dependency_layer_is_reused_after_a_source_only_change(tmp_path: Path) -> None:
    if shutil.which("buildah") is None:
        pytest.skip("buildah is not installed (apt-get install buildah)")
    try:
        _image_id("docker.io/library/python:3.11-slim")
    except subprocess.CalledProcessError:
        pytest.skip("no base images in the local buildah store: run `make image` first")
    original, changed = tmp_path / "original", tmp_path / "changed"
    _copy_checkout(original)
    _copy_checkout(changed)
    source = changed / "core/__init__.py"
    source.write_text(source.read_text() + "\n# a source-only change\n")
    tags = ["localhost/aitrading-deps:probe-a", "localhost/aitrading-deps:probe-b"]
    tags += ["localhost/aitrading:probe-a", "localhost/aitrading:probe-b"]
    try:
        _build(original, tags[0], "--target=deps")
        second = _build(changed, tags[1], "--target=deps")
        assert _image_id(tags[1]) == _image_id(tags[0]), second[-3000:]
        assert "Using cache" in second, second[-3000:]
        _build(original, tags[2])
        _build(changed, tags[3])
        assert _image_id(tags[3]) != _image_id(tags[2])  # the change reaches the image
    finally:
        subprocess.run([*BUILDAH, "rmi", *tags], capture_output=True, check=False)
        _release_buildah_mounts()


def _release_buildah_mounts() -> None:
    """buildah leaves overlay mounts of its storage behind; the test leaves none."""
    prefix = f"{REPO / '.cache/buildah'}/"
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    mounts = sorted(line.split()[4] for line in lines if line.split()[4].startswith(prefix))
    for mount in reversed(mounts):
        subprocess.run(["umount", mount], capture_output=True, check=False)
