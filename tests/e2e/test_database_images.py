"""The database images of the e2e tier honour the official images' interface.

The StatefulSets and Services are the operator's own renderings (`operator/render.py`) with
only the image names changed to the local stand-ins (scripts/build-test-images.sh): the
credentials come from the `<stack>-<db>-credentials` Secret as the official images read them
(POSTGRES_PASSWORD, DFLY_requirepass), each serves TLS 1.3 with its certificate from the
stack CA, data lives on the claim local-path provisions, and a client in a pod of the
project's image connects through the Service by DNS name (verifying the certificate), is
refused with a wrong password, and finds its data again after the database pod is deleted.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from typing import Any

import pytest

from aitrading.operator.crd_model import TradingStackSpec
from aitrading.operator.render import DATABASE_PORTS, service, stateful_set
from aitrading.operator.service_certs import new_ca, service_certificate
from aitrading.operator.stack_secrets import database_secrets
from tests.e2e.conftest import REPO, Cluster
from tests.e2e.manifests import as_list, container, obj, pod_spec

# Local stand-ins by default; the kind workflow sets the official images, so the same test
# shows that both honour one interface.
POSTGRES_IMAGE = os.environ.get(
    "AITRADING_E2E_POSTGRES_IMAGE", "localhost/aitrading-test/postgres:15"
)
DRAGONFLY_IMAGE = os.environ.get(
    "AITRADING_E2E_DRAGONFLY_IMAGE", "localhost/aitrading-test/dragonfly:redis7"
)
STACK = "e2e"

CLIENT = r"""
import asyncio, json, ssl, sys
import asyncpg, redis.asyncio as redis

async def main(ns, pg_password, df_password, action):
    out = {}
    dsn = f"postgresql://postgres:{pg_password}@e2e-postgres.{ns}.svc:5432/postgres"
    tls = ssl.create_default_context(cafile="/tls/ca.crt")
    tls.minimum_version = ssl.TLSVersion.TLSv1_3
    try:
        conn = await asyncpg.connect(dsn, timeout=10, ssl=tls)
        if action == "write":
            await conn.execute("CREATE TABLE IF NOT EXISTS kept (v text)")
            await conn.execute("INSERT INTO kept VALUES ('tick')")
        out["postgres"] = await conn.fetchval("SELECT string_agg(v, ',') FROM kept") \
            if action != "ping" else await conn.fetchval("SELECT 1")
        await conn.close()
    except Exception as exc:
        out["postgres_error"] = type(exc).__name__
    r = redis.Redis(host=f"e2e-dragonfly.{ns}.svc", port=6379, password=df_password,
                    socket_timeout=10, ssl=True, ssl_ca_certs="/tls/ca.crt",
                    ssl_min_version=ssl.TLSVersion.TLSv1_3)
    try:
        if action == "write":
            await r.set("kept", "tick")
        out["dragonfly"] = (await r.get("kept") or b"").decode() if action != "ping" \
            else await r.ping()
    except Exception as exc:
        out["dragonfly_error"] = type(exc).__name__
    finally:
        await r.aclose()
    print(json.dumps(out))

asyncio.run(main(*sys.argv[1:]))
"""


def _secret(name: str, data: dict[str, str]) -> dict[str, object]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return obj("v1", "Secret", name, None, data=encoded)


def _client(cluster: Cluster, ns: str, *args: str) -> dict[str, object]:
    answer = cluster.kubectl("-n", ns, "exec", "client", "--", "python3", "-c", CLIENT, ns, *args)
    result: dict[str, object] = json.loads(answer.stdout)
    return result


def test_postgres_and_dragonfly_images_behind_the_operators_manifests(cluster: Cluster) -> None:
    ns = cluster.namespace("e2e-db")
    pg_password, df_password = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
    spec = TradingStackSpec.model_validate(
        {
            "version": "e2e",
            "databases": {
                "postgres": {"image": POSTGRES_IMAGE, "storageSize": "256Mi"},
                "dragonfly": {"image": DRAGONFLY_IMAGE, "storageSize": "64Mi"},
            },
        }
    )
    # what the operator would generate: credentials, and a certificate per database from the
    # stack CA (both databases serve TLS 1.3 only)
    ca_key, ca_cert = new_ca(STACK)
    objects = [
        _secret(f"{STACK}-postgres-credentials", {"POSTGRES_PASSWORD": pg_password}),
        _secret(f"{STACK}-dragonfly-credentials", {"DFLY_requirepass": df_password}),
        _secret("client-ca", {"ca.crt": ca_cert.decode()}),
    ]
    for db in ("postgres", "dragonfly"):
        key, cert = service_certificate(ca_key, ca_cert, STACK, ns, db)
        objects.append(
            _secret(
                f"{STACK}-{db}-tls",
                {"tls.crt": cert.decode(), "tls.key": key.decode(), "ca.crt": ca_cert.decode()},
            )
        )
        objects += [stateful_set(STACK, ns, spec, db), service(STACK, ns, db, DATABASE_PORTS[db])]
    client = container(command=["sleep", "infinity"], mounts={"ca": "/tls"})
    objects.append(
        obj(
            "v1", "Pod", "client", pod_spec(client, {"ca": {"secret": {"secretName": "client-ca"}}})
        )
    )
    cluster.apply(as_list(*objects), ns)
    for db in ("postgres", "dragonfly"):
        cluster.kubectl(
            "-n", ns, "rollout", "status", f"statefulset/{STACK}-{db}", "--timeout=300s"
        )
    cluster.kubectl("-n", ns, "wait", "--for=condition=Ready", "pod/client", "--timeout=300s")

    assert _client(cluster, ns, pg_password, df_password, "write") == {
        "postgres": "tick",
        "dragonfly": "tick",
    }
    refused = _client(cluster, ns, "wrong", "wrong", "ping")
    assert refused.get("postgres_error") == "InvalidPasswordError", refused
    assert refused.get("dragonfly_error") == "AuthenticationError", refused

    for db in ("postgres", "dragonfly"):  # the data is on the claim, not in the pod
        pod = f"{STACK}-{db}-0"
        before = cluster.get("-n", ns, "pod", pod)["metadata"]["uid"]
        cluster.kubectl("-n", ns, "delete", "pod", pod, "--wait=true")
        cluster.wait_until(
            f"{pod} to be replaced and ready",
            lambda pod=pod, before=before: _ready_again(cluster, ns, pod, before),
            explain=cluster.describe(ns, "pod"),
        )
    assert _client(cluster, ns, pg_password, df_password, "read") == {
        "postgres": "tick",
        "dragonfly": "tick",
    }


def _ready_again(cluster: Cluster, ns: str, pod: str, old_uid: str) -> bool:
    found = cluster.kubectl("-n", ns, "get", "pod", pod, "-o", "json", check=False)
    if found.returncode != 0:
        return False
    current = json.loads(found.stdout)
    conditions = current["status"].get("conditions") or []
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
    return bool(current["metadata"]["uid"] != old_uid and ready)


WEAVIATE_IMAGE = os.environ.get(
    "AITRADING_E2E_WEAVIATE_IMAGE", "localhost/aitrading-test/weaviate:1.35.2"
)


def test_the_weaviate_image_behind_the_operators_manifests(cluster: Cluster) -> None:
    if cluster.local and not (REPO / ".cache/images/weaviate.tar").is_file():
        pytest.skip("no weaviate image: `make store-bin` builds weaviate-server, then `make image`")
    ns = cluster.namespace("e2e-weaviate")
    spec = TradingStackSpec.model_validate(
        {
            "version": "e2e",
            "databases": {
                "weaviate": {"enabled": True, "image": WEAVIATE_IMAGE, "storageSize": "256Mi"}
            },
        }
    )
    client = obj("v1", "Pod", "client", pod_spec(container(command=["sleep", "infinity"])))
    # the credentials exactly as the operator generates them: API-key auth, no anonymous access
    credentials, connection = database_secrets(STACK, ns, "weaviate")
    cluster.apply(
        as_list(
            _secret(f"{STACK}-weaviate-credentials", credentials),
            stateful_set(STACK, ns, spec, "weaviate"),
            service(STACK, ns, "weaviate", DATABASE_PORTS["weaviate"]),
            client,
        ),
        ns,
    )
    cluster.kubectl(
        "-n", ns, "rollout", "status", f"statefulset/{STACK}-weaviate", "--timeout=300s"
    )
    cluster.kubectl("-n", ns, "wait", "--for=condition=Ready", "pod/client", "--timeout=300s")
    url = f"http://{STACK}-weaviate.{ns}.svc:8080"

    def ready() -> bool:
        return _get(cluster, ns, f"{url}/v1/.well-known/ready", check=False).returncode == 0

    cluster.wait_until("weaviate to answer ready", ready, explain=cluster.describe(ns, "pod"))
    assert _get(cluster, ns, f"{url}/v1/meta", check=False).returncode != 0  # 401: no key
    meta = _get(cluster, ns, f"{url}/v1/meta", api_key=connection["api-key"])
    assert json.loads(meta.stdout)["version"].startswith("1.35"), meta.stdout


def _get(cluster: Cluster, ns: str, url: str, check: bool = True, api_key: str = "") -> Any:
    """GET `url` from inside the client pod (the body on stdout)."""
    fetch = (
        "import urllib.request, sys;"
        " headers = {'Authorization': 'Bearer ' + sys.argv[2]} if sys.argv[2] else {};"
        " request = urllib.request.Request(sys.argv[1], headers=headers);"
        " print(urllib.request.urlopen(request, timeout=10).read().decode())"
    )
    return cluster.kubectl(
        "-n", ns, "exec", "client", "--", "python3", "-c", fetch, url, api_key, check=check
    )
