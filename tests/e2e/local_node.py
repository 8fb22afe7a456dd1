"""The machine-level footprint of the local one-node cluster, to prove `down` removes it.

`scripts/local-cluster.sh down` promises to leave nothing behind: no process from the
cluster's binaries or its containerd, no mount under its state directory, no network namespace
it created, no pod cgroup, and the host sysctls kubelet changes back at their values. The e2e
fixture takes a `Footprint` before `up` and compares after `down`.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

HOST_SYSCTLS = ("vm.overcommit_memory", "kernel.panic", "kernel.panic_on_oops")


def _sysctl(name: str) -> str:
    return Path("/proc/sys", *name.split(".")).read_text().strip()


def _processes_under(prefixes: tuple[str, ...]) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(p in cmdline for p in prefixes):
            found.append(f"{entry.name}: {cmdline[:160]}")
    return found


def _mounts_under(prefix: str) -> list[str]:
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [line.split()[4] for line in lines if line.split()[4].startswith(prefix)]


def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def _pod_cgroups() -> set[str]:
    found = set()
    for top in Path("/sys/fs/cgroup").iterdir():  # v1: one hierarchy per controller
        for candidate in (top / "kubepods", top / "kubepods.slice", top.parent / "kubepods"):
            if candidate.is_dir():
                found.add(str(candidate))
    return found


@dataclass(frozen=True)
class Footprint:
    sysctls: dict[str, str]
    netns: frozenset[str]
    cgroups: frozenset[str]

    @classmethod
    def take(cls) -> Footprint:
        return cls(
            {name: _sysctl(name) for name in HOST_SYSCTLS},
            frozenset(_netns()),
            frozenset(_pod_cgroups()),
        )

    def leftovers(self, state_dir: Path, bin_dir: Path) -> list[str]:
        """Everything the cluster left on the machine; empty when `down` did its job."""
        problems = []
        for name, before in self.sysctls.items():
            if (now := _sysctl(name)) != before:
                problems.append(f"sysctl {name} is {now}, was {before}")
        problems += [f"namespace {ns} left" for ns in sorted(_netns() - self.netns)]
        problems += [f"mount {m} left" for m in _mounts_under(f"{state_dir}/")]
        problems += [
            f"process left: {p}"
            for p in _processes_under((f"{bin_dir}/", f"{state_dir}/containerd"))
        ]
        problems += [f"cgroup left: {c}" for c in sorted(_pod_cgroups() - self.cgroups)]
        if state_dir.exists():
            problems.append(f"state directory {state_dir} left")
        return problems
