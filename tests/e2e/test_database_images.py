"""The database images of the e2e tier honour the official images' interface.

The StatefulSets and Services are the operator's own renderings (`operator/render.py`) with
only the image names changed to the local stand-ins (scripts/build-test-images.sh): the
credentials come from the `<stack>-<db>-credentials` Secret as the official images read them
(POSTGRES_PASSWORD, DFLY_requirepass), data lives on the claim local-path provisions, and a
client in a pod of the project's image connects through the Service by DNS name, is refused
with a wrong password, and finds its data again after the database pod is deleted.
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
import asyncio, json, sys
import asyncpg, redis.asyncio as redis

async def main(ns, pg_password, df_password, action):
    out = {}
    dsn = f"postgresql://postgres:{pg_password}@e2e-postgres.{ns}.svc:5432/postgres"
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
        if action == "write":
            await conn.execute("CREATE TABLE IF NOT EXISTS kept (v text)")
            await conn.execute("INSERT INTO kept VALUES ('tick')")
        out["postgres"] = await conn.fetchval("SELECT string_agg(v, ',') FROM kept") \
            if action != "ping" else await conn.fetchval("SELECT 1")
        await conn.close()
    except Exception as exc:
        out["postgres_error"] = type(exc).__name__
    r = redis.Redis(host=f"e2e-dragonfly.{ns}.svc", port=6379, password=df_password,
                    socket_timeout=10)
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
    objects = [
        _secret(f"{STACK}-postgres-credentials", {"POSTGRES_PASSWORD": pg_password}),
        _secret(f"{STACK}-dragonfly-credentials", {"DFLY_requirepass": df_password}),
    ]
    for db in ("postgres", "dragonfly"):
        objects += [stateful_set(STACK, ns, spec, db), service(STACK, ns, db, DATABASE_PORTS[db])]
    objects.append(obj("v1", "Pod", "client", pod_spec(container(command=["sleep", "infinity"]))))
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
    cluster.apply(
        as_list(
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
    meta = _get(cluster, ns, f"{url}/v1/meta")
    assert json.loads(meta.stdout)["version"].startswith("1.35"), meta.stdout


def _get(cluster: Cluster, ns: str, url: str, check: bool = True) -> Any:
    """GET `url` from inside the client pod (the body on stdout)."""
    fetch = (
        "import urllib.request, sys;"
        " print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())"
    )
    return cluster.kubectl(
        "-n", ns, "exec", "client", "--", "python3", "-c", fetch, url, check=check
    )
