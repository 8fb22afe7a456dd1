"""The cluster itself: a Ready node, DNS, storage, and the project's image running in pods."""

from __future__ import annotations

import base64
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aitrading.operator.service_certs import new_ca, service_certificate
from tests.e2e.conftest import Cluster
from tests.e2e.manifests import as_list, container, obj, pod_spec

SLEEP = ["python3", "-c", "import time; time.sleep(86400)"]
# HTTPS against the stack CA (the certificate names the Service; a bare IP is checked by the
# chain only).
FETCH = (
    "import ssl, sys, urllib.request;"
    " ctx = ssl.create_default_context(cafile='/tls/ca.crt');"
    " ctx.check_hostname = not sys.argv[1].split('/')[2].split(':')[0].replace('.', '').isdigit();"
    " print(urllib.request.urlopen(sys.argv[1], timeout=10, context=ctx).read().decode())"
)


def test_node_is_ready(cluster: Cluster) -> None:
    nodes = cluster.get("nodes")["items"]
    assert nodes, "no node registered"
    ready = {
        n["metadata"]["name"]: c["status"]
        for n in nodes
        for c in n["status"]["conditions"]
        if c["type"] == "Ready"
    }
    assert set(ready.values()) == {"True"}, ready


def test_image_runs_the_cli(cluster: Cluster) -> None:
    ns = cluster.namespace("e2e-help")
    job = obj(
        "batch/v1",
        "Job",
        "help",
        {
            "backoffLimit": 0,
            "template": {"spec": pod_spec(container(args=["--help"]), restartPolicy="Never")},
        },
    )
    cluster.apply(as_list(job), ns)
    cluster.kubectl("-n", ns, "wait", "--for=condition=complete", "job/help", "--timeout=300s")
    logs = cluster.kubectl("-n", ns, "logs", "job/help").stdout
    assert "serve" in logs, logs
    assert "operator" in logs, logs


def test_serve_answers_through_a_cluster_ip_service_by_dns_name(cluster: Cluster) -> None:
    ns = cluster.namespace("e2e-serve")
    # Production refuses to start without the stack's signing key (tokens, service identity).
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    jwt_secret = obj("v1", "Secret", "jwt", None, data={"key.pem": base64.b64encode(pem).decode()})
    # ... and to serve plaintext outside loopback: a certificate the operator would mount.
    ca_key, ca_cert = new_ca("e2e")
    key, cert = service_certificate(ca_key, ca_cert, "e2e", ns, "database-service")
    tls = {"tls.crt": cert, "tls.key": key, "ca.crt": ca_cert}
    tls_secret = obj(
        "v1", "Secret", "tls", None, data={k: base64.b64encode(v).decode() for k, v in tls.items()}
    )
    server = container(
        args=["serve", "database-service"],
        port=8008,
        scheme="HTTPS",
        # Stores that do not exist: the service must still start and be alive.
        env={
            "AITRADING_SERVICES_BIND_HOST": "0.0.0.0",  # noqa: S104 - inside the pod
            "AITRADING_POSTGRES_DSN": "postgresql://smoke@127.0.0.1:1/smoke",
            "AITRADING_REDIS_URL": "redis://127.0.0.1:2",
            "AITRADING_CLICKHOUSE_DSN": "http://127.0.0.1:3",
            "AITRADING_SECURITY_JWT_KEY_FILE": "/var/run/secrets/aitrading/jwt/key.pem",
            "AITRADING_SECURITY_TLS_CERT_FILE": "/tls/tls.crt",
            "AITRADING_SECURITY_TLS_KEY_FILE": "/tls/tls.key",
            "AITRADING_SECURITY_TLS_CA_FILE": "/tls/ca.crt",
        },
        mounts={
            "data": "/var/lib/aitrading",
            "jwt": "/var/run/secrets/aitrading/jwt",
            "tls": "/tls",
        },
    )
    deployment = obj(
        "apps/v1",
        "Deployment",
        "smoke",
        {
            "selector": {"matchLabels": {"app": "smoke"}},
            "template": {
                "metadata": {"labels": {"app": "smoke"}},
                "spec": pod_spec(
                    server,
                    {
                        "data": {"emptyDir": {}},
                        "jwt": {"secret": {"secretName": "jwt"}},
                        "tls": {"secret": {"secretName": "tls"}},
                    },
                ),
            },
        },
    )
    service = obj(
        "v1",
        "Service",
        "e2e-database-service",
        {"selector": {"app": "smoke"}, "ports": [{"port": 8008, "targetPort": 8008}]},
    )
    probe = obj(
        "v1",
        "Pod",
        "probe",
        pod_spec(
            container(command=SLEEP, mounts={"tls": "/tls"}),
            {"tls": {"secret": {"secretName": "tls"}}},
        ),
    )
    cluster.apply(as_list(jwt_secret, tls_secret, deployment, service, probe), ns)
    cluster.kubectl("-n", ns, "rollout", "status", "deployment/smoke", "--timeout=300s")
    cluster.kubectl("-n", ns, "wait", "--for=condition=Ready", "pod/probe", "--timeout=300s")
    service_ip = cluster.get("-n", ns, "service", "e2e-database-service")["spec"]["clusterIP"]
    for url in (
        f"https://e2e-database-service.{ns}.svc.cluster.local:8008/health/live",  # CoreDNS
        f"https://{service_ip}:8008/health/live",  # kube-proxy
    ):

        def fetch(url: str = url) -> Any:
            return cluster.kubectl(
                "-n", ns, "exec", "probe", "--", "python3", "-c", FETCH, url, check=False
            )

        # A ready pod is routed once its endpoint reaches kube-proxy: wait for that, then look.
        cluster.wait_until(
            f"{url} to answer",
            lambda fetch=fetch: fetch().returncode == 0,
            explain=lambda: fetch().stderr,
        )
        answer = fetch()
        assert '"status":"alive"' in answer.stdout, answer.stdout


def test_a_volume_claim_binds_and_keeps_data_across_pods(cluster: Cluster) -> None:
    ns = cluster.namespace("e2e-pvc")
    claim = obj(
        "v1",
        "PersistentVolumeClaim",
        "data",
        {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}},
    )

    def pod(name: str, script: str) -> dict[str, object]:
        main = container(command=["python3", "-c", script], mounts={"data": "/data"})
        volumes = {"data": {"persistentVolumeClaim": {"claimName": "data"}}}
        return obj("v1", "Pod", name, pod_spec(main, volumes, restartPolicy="Never"))

    def succeeded(name: str) -> bool:
        return cluster.get("-n", ns, "pod", name)["status"].get("phase") == "Succeeded"

    cluster.apply(as_list(claim, pod("writer", "open('/data/kept', 'w').write('tick')")), ns)
    cluster.wait_until(
        "the writer pod to succeed on a bound claim",
        lambda: succeeded("writer"),
        explain=cluster.describe(ns, "pod,pvc"),
    )
    assert cluster.get("-n", ns, "pvc", "data")["status"]["phase"] == "Bound"
    cluster.kubectl("-n", ns, "delete", "pod", "writer")
    cluster.apply(as_list(pod("reader", "print(open('/data/kept').read())")), ns)
    cluster.wait_until(
        "the reader pod to succeed",
        lambda: succeeded("reader"),
        explain=cluster.describe(ns, "pod"),
    )
    assert cluster.kubectl("-n", ns, "logs", "reader").stdout.strip() == "tick"
