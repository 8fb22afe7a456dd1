"""A real kube-apiserver with etcd (no kubelet, no controllers), the way envtest runs them.

The binaries come from `make cluster-bin` (scripts/build-k8s-test-bins.sh, into .cache/bin);
without them these tests skip and say so.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.integration.conftest import free_port

BIN = Path(os.environ.get("AITRADING_CLUSTER_BIN", Path(__file__).parents[2] / ".cache/bin"))
TOKEN = "aitrading-test-admin-token"


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path, headers: dict[str, str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(url, headers=headers, verify=False, timeout=1).status_code == 200:  # noqa: S501 - loopback test server, self-signed
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready: {log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    etcd_bin, apiserver_bin = BIN / "etcd", BIN / "kube-apiserver"
    if not (etcd_bin.is_file() and apiserver_bin.is_file()):
        pytest.skip(f"no etcd/kube-apiserver in {BIN}: run `make cluster-bin` to build them")
    root = tmp_path_factory.mktemp("cluster")
    # The kubernetes client caches API discovery in $TMPDIR/osrcp-<host>.json across runs; a
    # file left by an earlier API server on the same port breaks discovery ("KeyError:
    # 'resources'"). Each session gets its own directory for it.
    tempfile.tempdir = str(tmp_path_factory.mktemp("kube-discovery"))
    client_port, peer_port, api_port = free_port(), free_port(), free_port()
    etcd_log = root / "etcd.log"
    etcd = subprocess.Popen(
        [
            str(etcd_bin),
            "--data-dir",
            str(root / "etcd"),
            "--name",
            "default",
            "--listen-client-urls",
            f"http://127.0.0.1:{client_port}",
            "--advertise-client-urls",
            f"http://127.0.0.1:{client_port}",
            "--listen-peer-urls",
            f"http://127.0.0.1:{peer_port}",
            "--initial-advertise-peer-urls",
            f"http://127.0.0.1:{peer_port}",
            "--initial-cluster",
            f"default=http://127.0.0.1:{peer_port}",
        ],
        stdout=etcd_log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (root / "sa.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (root / "sa.pub").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    (root / "tokens.csv").write_text(f'{TOKEN},admin,admin,"system:masters"\n')
    api_log = root / "apiserver.log"
    apiserver = subprocess.Popen(
        [
            str(apiserver_bin),
            f"--etcd-servers=http://127.0.0.1:{client_port}",
            f"--cert-dir={root / 'certs'}",
            f"--secure-port={api_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            "--service-cluster-ip-range=10.96.0.0/24",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={root / 'sa.pub'}",
            f"--service-account-signing-key-file={root / 'sa.key'}",
            "--authorization-mode=RBAC",
            f"--token-auth-file={root / 'tokens.csv'}",
            "--disable-admission-plugins=ServiceAccount",
            "--allow-privileged=true",
        ],
        stdout=api_log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"https://127.0.0.1:{api_port}"
    try:
        _wait(f"http://127.0.0.1:{client_port}/health", etcd, etcd_log, {})
        _wait(f"{url}/readyz", apiserver, api_log, {"authorization": f"Bearer {TOKEN}"})
        yield {"url": url, "token": TOKEN, "root": root}
    finally:
        for proc in (apiserver, etcd):
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="session")
def kube(api_server: dict[str, Any]) -> Any:
    """A `kubernetes` ApiClient for the test API server (loopback, self-signed: unverified)."""
    from kubernetes import client

    config = client.Configuration()
    config.host = api_server["url"]
    config.api_key = {"authorization": f"Bearer {api_server['token']}"}
    config.verify_ssl = False
    return client.ApiClient(config)


@pytest.fixture(scope="session")
def operator_token(kube: Any) -> str:
    """A token of the operator's own ServiceAccount, bound to the chart's ClusterRole.

    Tests that run the operator with it exercise its RBAC as a cluster would: a verb the
    ClusterRole lacks fails here as it fails in the pod.
    """
    from kubernetes import client

    from aitrading.operator.rbac import cluster_role

    core, rbac = client.CoreV1Api(kube), client.RbacAuthorizationV1Api(kube)
    namespace, name = "aitrading-system", "aitrading-operator"
    core.create_namespace({"metadata": {"name": namespace}})
    core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    rbac.create_cluster_role(cluster_role(name))
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": name,
            },
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        }
    )
    answer = core.create_namespaced_service_account_token(
        name, namespace, {"spec": {"expirationSeconds": 7200}}
    )
    return str(answer.status.token)


@pytest.fixture(scope="session")
def operator_kube(api_server: dict[str, Any], operator_token: str) -> Any:
    """A `kubernetes` ApiClient that acts as the operator's ServiceAccount."""
    from kubernetes import client

    config = client.Configuration()
    config.host = api_server["url"]
    config.api_key = {"authorization": f"Bearer {operator_token}"}
    config.verify_ssl = False
    return client.ApiClient(config)
