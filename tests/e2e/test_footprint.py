"""The check behind "cluster-down leaves nothing behind" does see leftovers.

The session fixture compares a `Footprint` taken before `up` with the machine after `down`;
here the comparison is shown to report a namespace, a mount, a process and a changed sysctl
that were left behind (root only: it creates them).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.local_node import Footprint


@pytest.mark.skipif(
    sys.platform != "linux" or os.geteuid() != 0, reason="needs root on Linux (ip netns, mount)"
)
def test_leftovers_are_reported(tmp_path: Path) -> None:
    state, bin_dir = tmp_path / "state", tmp_path / "bin"
    (state / "mnt").mkdir(parents=True)
    bin_dir.mkdir()
    sleeper = bin_dir / "sleeper"
    sleeper.symlink_to("/bin/sleep")
    before = Footprint.take()
    assert before.leftovers(tmp_path / "absent", bin_dir) == []
    subprocess.run(["ip", "netns", "add", "aitrading-leak-probe"], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "probe", str(state / "mnt")], check=True)
    process = subprocess.Popen([str(sleeper), "600"])
    try:
        left = "\n".join(before.leftovers(state, bin_dir))
        assert "namespace aitrading-leak-probe left" in left
        assert f"mount {state}/mnt left" in left
        assert f"process left: {process.pid}" in left
        assert f"state directory {state} left" in left
    finally:
        process.kill()
        process.wait()
        subprocess.run(["umount", str(state / "mnt")], check=False)
        subprocess.run(["ip", "netns", "delete", "aitrading-leak-probe"], check=False)
    changed = Footprint({**before.sysctls, "kernel.panic": "-12345"}, before.netns, before.cgroups)
    assert any("sysctl kernel.panic" in p for p in changed.leftovers(tmp_path / "gone", bin_dir))
