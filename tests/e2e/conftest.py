"""One cluster for the e2e tier: the user's (KUBECONFIG) or the local one-node cluster.

With `KUBECONFIG` set (kind in the GitHub workflow, a user's cluster) the tests run there and
leave the cluster as it was, apart from their own namespaces. Otherwise, as root on Linux,
the session brings up the local node (`scripts/local-cluster.sh up`) and takes it down at the
end — also when a test fails or the run is interrupted — and then checks that nothing was
left on the machine. Anywhere else the tier is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.local_node import Footprint

REPO = Path(__file__).parents[2]
BIN = Path(os.environ.get("AITRADING_CLUSTER_BIN", REPO / ".cache/bin"))
STATE = Path(os.environ.get("AITRADING_CLUSTER_DIR", REPO / ".cache/cluster"))
SCRIPT = REPO / "scripts/local-cluster.sh"
# The image the pods run: built from the Dockerfile (scripts/build-test-images.sh, or
# `docker build` + `kind load` in the workflow).
IMAGE = os.environ.get("AITRADING_E2E_IMAGE", "docker.io/library/aitrading:e2e")


@dataclass
class Cluster:
    kubeconfig: Path
    local: bool
    created_namespaces: list[str] = field(default_factory=list)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        kubectl = str(BIN / "kubectl") if (BIN / "kubectl").is_file() else "kubectl"
        result = subprocess.run(
            [kubectl, "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed:\n{result.stderr}{result.stdout}"
            )
        return result

    def get(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def apply(self, manifest: str, namespace: str | None = None) -> None:
        ns = ["-n", namespace] if namespace else []
        self.kubectl(*ns, "apply", "-f", "-", input=manifest)

    def namespace(self, prefix: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        self.kubectl("create", "namespace", name)
        self.created_namespaces.append(name)
        return name

    def wait_until(
        self,
        what: str,
        condition: Callable[[], bool],
        timeout: float = 300,
        explain: Callable[[], str] = lambda: "",
    ) -> None:
        """Poll `condition` until it holds (generous timeouts: this is not a speed test)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(1)
        raise AssertionError(f"timed out waiting for {what}\n{explain()}")

    def describe(self, namespace: str, kinds: str) -> Callable[[], str]:
        return lambda: self.kubectl("-n", namespace, "describe", kinds, check=False).stdout


def _local_cluster_possible() -> str | None:
    if sys.platform != "linux":
        return "the local one-node cluster needs Linux"
    if os.geteuid() != 0:
        return "the local one-node cluster needs root (network namespace, containerd, kubelet)"
    missing = [
        b
        for b in (
            "etcd",
            "kube-apiserver",
            "kubelet",
            "kubectl",
            "coredns",
            "local-path-provisioner",
        )
        if not (BIN / b).is_file()
    ]
    if missing:
        return f"no {', '.join(missing)} in {BIN}: run `make cluster-bin-node`"
    if not (REPO / ".cache/images/aitrading.tar").is_file():
        return "no image built from the Dockerfile: run `make image`"
    return None


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    given = os.environ.get("KUBECONFIG")
    if given:
        found = Cluster(Path(given), local=False)
        yield found
        for ns in found.created_namespaces:
            found.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        return
    reason = _local_cluster_possible()
    if reason:
        pytest.skip(reason)
    before = Footprint.take()
    try:
        up = subprocess.run(
            ["bash", str(SCRIPT), "up"], capture_output=True, text=True, check=False
        )
        assert up.returncode == 0, f"local cluster did not come up:\n{up.stderr[-6000:]}"
        yield Cluster(STATE / "kubeconfig", local=True)
    finally:
        down = subprocess.run(
            ["bash", str(SCRIPT), "down"], capture_output=True, text=True, check=False
        )
        assert down.returncode == 0, down.stderr[-3000:]
        left = before.leftovers(STATE, BIN)
        assert not left, "cluster-down left things behind:\n" + "\n".join(left)
