"""Pack a root filesystem directory into a docker-archive image tarball (test infrastructure).

No registry is reachable from the machines the e2e tier runs on, so the images the cluster
needs (the pause sandbox, stand-ins for base images, database images) are built from local
directories and imported with `ctr images import` or `buildah pull docker-archive:`. The
format is the one `docker save` writes: one layer tar, an image config, a manifest.

    python3 scripts/image_from_dir.py ROOTFS NAME:TAG OUT.tar [--env K=V]... [--entrypoint JSON]
        [--cmd JSON] [--workdir DIR] [--user UID:GID]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build(rootfs: Path, name: str, out: Path, config: dict[str, object]) -> None:
    """Write `out`, a docker-archive whose single layer is the content of `rootfs`."""
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        work = Path(tmp)
        layer = work / "layer.tar"
        # GNU tar keeps device nodes, hard links, xattrs and numeric owners as they are.
        subprocess.run(
            ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(layer), "."],
            check=True,
        )
        diff_id = _sha256(layer)
        (work / diff_id).mkdir()
        layer.rename(work / diff_id / "layer.tar")
        image_config = {
            "architecture": "amd64",
            "os": "linux",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
            "history": [{"created_by": f"scripts/image_from_dir.py {rootfs.name}"}],
        }
        config_bytes = json.dumps(image_config, sort_keys=True).encode()
        config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
        (work / config_name).write_bytes(config_bytes)
        manifest = [{"Config": config_name, "RepoTags": [name], "Layers": [f"{diff_id}/layer.tar"]}]
        (work / "manifest.json").write_text(json.dumps(manifest))
        partial = out.with_suffix(".partial")
        with tarfile.open(partial, "w") as archive:
            for entry in ("manifest.json", config_name, diff_id):
                archive.add(work / entry, arcname=entry)
        partial.rename(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rootfs", type=Path)
    parser.add_argument("name")
    parser.add_argument("out", type=Path)
    parser.add_argument("--env", action="append", default=[])
    parser.add_argument("--entrypoint", type=json.loads)
    parser.add_argument("--cmd", type=json.loads)
    parser.add_argument("--workdir")
    parser.add_argument("--user")
    args = parser.parse_args()
    config: dict[str, object] = {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", *args.env]
    }
    for key, value in (
        ("Entrypoint", args.entrypoint),
        ("Cmd", args.cmd),
        ("WorkingDir", args.workdir),
        ("User", args.user),
    ):
        if value is not None:
            config[key] = value
    build(args.rootfs, args.name, args.out, config)


if __name__ == "__main__":
    main()
