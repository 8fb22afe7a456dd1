"""The operator's CRD and reconcile loop against a real kube-apiserver (etcd, no kubelet)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from aitrading.operator.crd_model import GROUP, PLURAL, VERSION, TradingStackSpec, crd_manifest
from aitrading.operator.reconcile import FIELD_MANAGER, Applier, reconcile

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def dynamic(kube: Any) -> Any:
    from kubernetes import dynamic as kdynamic

    client = kdynamic.DynamicClient(kube)
    crds = client.resources.get(
        api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition"
    )
    crds.server_side_apply(body=crd_manifest(), field_manager=FIELD_MANAGER, force_conflicts=True)
    for _ in range(3000):  # wait until the new API is served (generous)
        try:
            client = kdynamic.DynamicClient(kube)
            client.resources.get(api_version=f"{GROUP}/{VERSION}", kind="TradingStack")
            break
        except Exception:
            time.sleep(0.1)
    return client


@pytest.fixture
def namespace(kube: Any) -> str:
    from kubernetes import client

    name = f"t-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(kube).create_namespace({"metadata": {"name": name}})
    return name


def stacks(dynamic: Any) -> Any:
    return dynamic.resources.get(api_version=f"{GROUP}/{VERSION}", kind="TradingStack")


def create(dynamic: Any, namespace: str, spec: dict[str, Any], name: str = "prod") -> Any:
    return stacks(dynamic).create(
        body={
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "TradingStack",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        },
        namespace=namespace,
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "spec.version: Required value"),
        ({"version": "1", "deletionPolicy": "Shred"}, 'Unsupported value: "Shred"'),
        (
            {"version": "1", "services": {"apiGateway": {"replicas": 99}}},
            "should be less than or equal to 50",
        ),
        ({"version": "1", "databases": {"postgres": {"enabled": False}}}, "PostgreSQL is required"),
        (
            {"version": "1", "logging": {"retentionDays": {"critical": 10, "error": 30}}},
            "retentionDays.critical must be at least retentionDays.error",
        ),
    ],
)
def test_invalid_stacks_are_refused_by_the_api_server(
    dynamic: Any, namespace: str, spec: dict[str, Any], message: str
) -> None:
    from kubernetes.dynamic.exceptions import UnprocessibleEntityError

    with pytest.raises(UnprocessibleEntityError) as caught:
        create(dynamic, namespace, spec)
    assert message in json.loads(caught.value.body)["message"]


def test_defaults_are_applied_by_the_api_server(dynamic: Any, namespace: str) -> None:
    stored = create(dynamic, namespace, {"version": "1.0.0"}).to_dict()
    assert stored["spec"]["deletionPolicy"] == "Retain"
    assert stored["spec"]["services"]["apiGateway"]["replicas"] == 1
    assert stored["spec"]["databases"]["weaviate"]["enabled"] is False


def _children(dynamic: Any, namespace: str) -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for api_version, kind in (
        ("v1", "ConfigMap"),
        ("v1", "Service"),
        ("apps/v1", "Deployment"),
        ("apps/v1", "StatefulSet"),
        ("batch/v1", "CronJob"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
    ):
        api = dynamic.resources.get(api_version=api_version, kind=kind)
        for item in api.get(namespace=namespace).to_dict()["items"]:
            found[(kind, item["metadata"]["name"])] = item
    return found


def _mark_ready(dynamic: Any, namespace: str, kind: str) -> None:
    """Do what the Deployment/StatefulSet controllers would: report pods ready."""
    api = dynamic.resources.get(api_version="apps/v1", kind=kind)
    for item in api.get(namespace=namespace).to_dict()["items"]:
        replicas = item["spec"].get("replicas", 1)
        api.status.patch(
            body={
                "status": {
                    "replicas": replicas,
                    "readyReplicas": replicas,
                    "observedGeneration": item["metadata"]["generation"],
                }
            },
            name=item["metadata"]["name"],
            namespace=namespace,
            content_type="application/merge-patch+json",
        )


def test_reconcile_builds_the_stack_in_order_and_repairs_drift(
    dynamic: Any, namespace: str
) -> None:
    body = create(dynamic, namespace, {"version": "1.0.0"}).to_dict()
    spec = TradingStackSpec.model_validate(body["spec"])
    uid = body["metadata"]["uid"]
    applier = Applier(dynamic)

    first = reconcile(applier, "prod", namespace, uid, spec)
    assert not first.ready
    assert "phase 1" in first.message  # StatefulSets are not ready: nothing later applied yet
    children = _children(dynamic, namespace)
    assert ("StatefulSet", "prod-postgres") in children
    assert ("Deployment", "prod-database-service") not in children

    _mark_ready(dynamic, namespace, "StatefulSet")
    second = reconcile(applier, "prod", namespace, uid, spec)
    assert "phase 2" in second.message
    _mark_ready(dynamic, namespace, "Deployment")
    third = reconcile(applier, "prod", namespace, uid, spec)
    assert "phase 3" in third.message
    _mark_ready(dynamic, namespace, "Deployment")
    _mark_ready(dynamic, namespace, "StatefulSet")  # data-bridge: its spool on a claim
    done = reconcile(applier, "prod", namespace, uid, spec)
    assert done.ready, done.message
    assert done.phase == "Ready"

    children = _children(dynamic, namespace)
    assert ("CronJob", "prod-logs-enforce") in children
    for (kind, name), item in children.items():
        if kind == "Service" and name == "kubernetes":
            continue
        owners = item["metadata"].get("ownerReferences") or []
        assert [(o["kind"], o["uid"], o["controller"]) for o in owners] == [
            ("TradingStack", uid, True)
        ], (kind, name)
        managers = {m["manager"] for m in item["metadata"]["managedFields"]}
        assert FIELD_MANAGER in managers, (kind, name)

    # drift: a deleted child comes back, an edited field is set back
    deployments = dynamic.resources.get(api_version="apps/v1", kind="Deployment")
    deployments.delete(name="prod-api-gateway", namespace=namespace)
    deployments.patch(
        body={"spec": {"replicas": 7}},
        name="prod-trading-engine",
        namespace=namespace,
        content_type="application/merge-patch+json",
    )
    reconcile(applier, "prod", namespace, uid, spec)
    children = _children(dynamic, namespace)
    assert ("Deployment", "prod-api-gateway") in children
    assert children[("Deployment", "prod-trading-engine")]["spec"]["replicas"] == 1

    # a spec edit reaches the children
    edited = spec.model_copy(update={"version": "1.1.0"})
    reconcile(applier, "prod", namespace, uid, edited)
    image = children_image(dynamic, namespace, "prod-database-service")
    assert image.endswith(":1.1.0")


def children_image(dynamic: Any, namespace: str, name: str) -> str:
    deployment = (
        dynamic.resources.get(api_version="apps/v1", kind="Deployment")
        .get(name=name, namespace=namespace)
        .to_dict()
    )
    image: str = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    return image


@pytest.mark.parametrize("identity", ["cluster-admin", "operator-serviceaccount"])
def test_the_kopf_operator_reconciles_reports_status_and_honours_deletion_policy(
    dynamic: Any,
    kube: Any,
    api_server: dict[str, Any],
    namespace: str,
    identity: str,
    request: pytest.FixtureRequest,
) -> None:
    """Once as cluster-admin, once as the operator's own ServiceAccount (the chart's RBAC)."""
    import threading

    import kopf
    from kubernetes import client
    from kubernetes import dynamic as kdynamic

    from aitrading.operator.run import run

    # The operator's own discovery client: kubernetes' LazyDiscoverer is not thread-safe, and
    # the kopf thread and this test thread must not share one (KeyError: 'resources').
    cache = str(request.getfixturevalue("tmp_path") / "operator-discovery.json")
    if identity == "operator-serviceaccount":
        token = request.getfixturevalue("operator_token")
        client_for = request.getfixturevalue("operator_kube")
    else:
        token, client_for = api_server["token"], kube
    operator_dynamic = kdynamic.DynamicClient(client_for, cache_file=cache)
    stop, ready = threading.Event(), threading.Event()
    connection = kopf.ConnectionInfo(server=api_server["url"], token=token, insecure=True)
    thread = threading.Thread(
        target=run,
        kwargs={
            "connection": connection,
            "stop_flag": stop,
            "ready_flag": ready,
            "liveness": None,
            "standalone": True,
            "dynamic": operator_dynamic,
            "retry_delay_s": 0.5,
        },
        daemon=True,
    )
    thread.start()
    try:
        assert ready.wait(300), "operator did not start"
        create(dynamic, namespace, {"version": "2.0.0", "deletionPolicy": "Delete"}, name="live")

        def status() -> dict[str, Any]:
            got: dict[str, Any] = stacks(dynamic).get(name="live", namespace=namespace).to_dict()
            return got.get("status") or {}

        deadline = time.monotonic() + 300  # generous: a condition, not a speed
        while time.monotonic() < deadline:  # the operator builds phase by phase
            _mark_ready(dynamic, namespace, "StatefulSet")
            _mark_ready(dynamic, namespace, "Deployment")
            if status().get("phase") == "Ready":
                break
            time.sleep(0.3)
        current = status()
        assert current.get("phase") == "Ready", current
        ready_condition = next(c for c in current["conditions"] if c["type"] == "Ready")
        assert ready_condition["status"] == "True"
        assert current["observedGeneration"] == 1
        assert current["components"]["database-service"]["ready"] is True

        core = client.CoreV1Api(kube)
        core.create_namespaced_persistent_volume_claim(
            namespace,
            {
                "metadata": {
                    "name": "data-live-postgres-0",
                    "labels": {"app.kubernetes.io/instance": "live"},
                },
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        )
        stacks(dynamic).delete(name="live", namespace=namespace)
        deadline = time.monotonic() + 300  # generous: a condition, not a speed
        while time.monotonic() < deadline:
            claims = core.list_namespaced_persistent_volume_claim(namespace).items
            gone = not [c for c in claims if c.metadata.deletion_timestamp is None]
            if gone:
                break
            time.sleep(0.2)
        assert gone, "deletionPolicy Delete must remove the stack's volume claims"

        create(dynamic, namespace, {"version": "2.0.0", "deletionPolicy": "Retain"}, name="kept")
        core.create_namespaced_persistent_volume_claim(
            namespace,
            {
                "metadata": {
                    "name": "data-kept-postgres-0",
                    "labels": {"app.kubernetes.io/instance": "kept"},
                },
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        )
        for _ in range(3000):  # the finalizer is in place once the operator has seen it
            finalizers = stacks(dynamic).get(name="kept", namespace=namespace).metadata.finalizers
            if finalizers:
                break
            time.sleep(0.1)
        stacks(dynamic).delete(name="kept", namespace=namespace)
        deadline = time.monotonic() + 300  # generous: a condition, not a speed
        while time.monotonic() < deadline:
            remaining = [
                s
                for s in stacks(dynamic).get(namespace=namespace).items
                if s.metadata.name == "kept"
            ]
            if not remaining:
                break
            time.sleep(0.2)
        assert not remaining, "the finalizer must let a Retain stack go"
        claims = [
            c.metadata.name for c in core.list_namespaced_persistent_volume_claim(namespace).items
        ]
        assert "data-kept-postgres-0" in claims  # Retain keeps the data
    finally:
        stop.set()
        thread.join(30)


def test_kubectl_get_ts_columns_render(
    dynamic: Any, api_server: dict[str, Any], namespace: str
) -> None:
    """What `kubectl get ts` shows: the server-side Table with our printer columns."""
    import httpx

    create(dynamic, namespace, {"version": "3.1.4"}, name="cols")
    answer = httpx.get(
        f"{api_server['url']}/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}",
        headers={
            "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io",
            "Authorization": f"Bearer {api_server['token']}",
        },
        verify=False,  # noqa: S501 - loopback test API server with a self-signed certificate
    )
    table = answer.json()
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name",
        "Ready",
        "Phase",
        "Version",
        "Age",
    ]
    row = table["rows"][0]["cells"]
    assert row[0] == "cols"
    assert row[3] == "3.1.4"


@pytest.mark.parametrize("example", ["minimal", "external-databases", "production"])
def test_the_examples_are_accepted_by_the_api_server(
    dynamic: Any, namespace: str, example: str
) -> None:
    from pathlib import Path

    import yaml

    body = yaml.safe_load((Path(__file__).parents[2] / "examples" / f"{example}.yaml").read_text())
    body["metadata"]["namespace"] = namespace
    stored = stacks(dynamic).create(body=body, namespace=namespace).to_dict()
    assert stored["spec"]["version"] == "0.1.0"


def test_the_operator_upgrades_its_crd_that_helm_installed_once(
    dynamic: Any, operator_kube: Any
) -> None:
    """Helm installed an older CRD; the operator, as its own ServiceAccount, upgrades it."""
    import copy

    from kubernetes import dynamic as kdynamic

    from aitrading.operator.run import ensure_crd

    crds = dynamic.resources.get(
        api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition"
    )
    old = copy.deepcopy(crd_manifest())  # an older chart's CRD: no Version column
    columns = old["spec"]["versions"][0]["additionalPrinterColumns"]
    old["spec"]["versions"][0]["additionalPrinterColumns"] = [
        c for c in columns if c["name"] != "Version"
    ]
    crds.server_side_apply(
        body=old, name=old["metadata"]["name"], field_manager="helm", force_conflicts=True
    )

    def column_names() -> list[str]:
        live = crds.get(name=old["metadata"]["name"]).to_dict()
        return [c["name"] for c in live["spec"]["versions"][0]["additionalPrinterColumns"]]

    assert "Version" not in column_names()
    ensure_crd(kdynamic.DynamicClient(operator_kube))
    assert column_names() == ["Ready", "Phase", "Version", "Age"]


def test_the_operator_creates_the_stack_ca_and_service_certificates_once(
    dynamic: Any, operator_kube: Any, namespace: str
) -> None:
    """As its own ServiceAccount: the CA and one certificate per service appear on the first
    reconcile, owned by the stack, and are reused — not rewritten — by the next."""
    from kubernetes import dynamic as kdynamic

    from aitrading.operator.render import SERVICE_PORTS

    body = create(dynamic, namespace, {"version": "1.0.0"}, name="tls").to_dict()
    spec = TradingStackSpec.model_validate(body["spec"])
    applier = Applier(kdynamic.DynamicClient(operator_kube))
    reconcile(applier, "tls", namespace, body["metadata"]["uid"], spec)
    secrets = dynamic.resources.get(api_version="v1", kind="Secret")

    def certificates() -> dict[str, str]:
        found = {}
        for item in secrets.get(namespace=namespace).to_dict()["items"]:
            name = item["metadata"]["name"]
            if name.startswith("tls-") and (name.endswith("-tls") or name == "tls-ca"):
                owners = item["metadata"]["ownerReferences"]
                assert [o["uid"] for o in owners] == [body["metadata"]["uid"]]
                found[item["metadata"]["name"]] = (
                    item["data"].get("tls.crt") or item["data"]["ca.crt"]
                )
        return found

    first = certificates()
    databases = {"tls-postgres-tls", "tls-clickhouse-tls", "tls-dragonfly-tls"}
    services = {f"tls-{s}-tls" for s in SERVICE_PORTS}
    assert set(first) == {"tls-ca", "tls-logs-enforce-tls"} | services | databases
    reconcile(applier, "tls", namespace, body["metadata"]["uid"], spec)
    assert certificates() == first


def test_the_operator_generates_the_stacks_keys_and_credentials_once_and_rotates_keys(
    dynamic: Any, operator_kube: Any, namespace: str
) -> None:
    """As its own ServiceAccount: signing keys and each database's credentials/connection
    pair appear on the first reconcile, are reused by the next, and only the keys change when
    the stack's rotate-keys annotation does. Nothing of them reaches the stack's status."""
    import base64

    from kubernetes import dynamic as kdynamic

    from aitrading.operator.stack_secrets import (
        RotationKind,
        StackSecretError,
        ensure_stack_secrets,
    )

    body = create(dynamic, namespace, {"version": "1.0.0"}, name="keys").to_dict()
    spec = TradingStackSpec.model_validate(body["spec"])
    applier = Applier(kdynamic.DynamicClient(operator_kube))
    owner = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TradingStack",
        "name": "keys",
        "uid": body["metadata"]["uid"],
        "controller": True,
    }
    secrets = dynamic.resources.get(api_version="v1", kind="Secret")
    wanted = {
        "keys-jwt",
        "keys-audit-key",
        *(
            f"keys-{db}-{kind}"
            for db in ("postgres", "clickhouse", "dragonfly")
            for kind in ("credentials", "connection")
        ),
    }

    def contents() -> dict[str, dict[str, str]]:
        found = {}
        for item in secrets.get(namespace=namespace).to_dict()["items"]:
            if item["metadata"]["name"] in wanted:
                assert [o["uid"] for o in item["metadata"]["ownerReferences"]] == [owner["uid"]]
                found[item["metadata"]["name"]] = item["data"]
        return found

    reconcile(applier, "keys", namespace, owner["uid"], spec)
    first = contents()
    assert set(first) == wanted
    pg = base64.b64decode(first["keys-postgres-credentials"]["POSTGRES_PASSWORD"]).decode()
    assert pg in base64.b64decode(first["keys-postgres-connection"]["migration-url"]).decode()
    reconcile(applier, "keys", namespace, owner["uid"], spec)
    assert contents() == first  # reused, not rewritten

    keys_only: dict[RotationKind, str | None] = {"keys": "2026-12"}
    written = ensure_stack_secrets(applier.dynamic, "keys", namespace, owner, spec, keys_only)
    assert sorted(written) == ["keys-audit-key", "keys-jwt"]
    rotated = contents()
    assert rotated["keys-jwt"] != first["keys-jwt"]
    assert rotated["keys-audit-key"] != first["keys-audit-key"]
    assert {k: v for k, v in rotated.items() if "-key" not in k and "jwt" not in k} == {
        k: v for k, v in first.items() if "-key" not in k and "jwt" not in k
    }
    assert ensure_stack_secrets(applier.dynamic, "keys", namespace, owner, spec, keys_only) == []

    # the passwords' own annotation: every in-cluster database gets new ones, the keys stay;
    # PostgreSQL's connection keeps the previous owner DSN, to log in once and set the new one
    both: dict[RotationKind, str | None] = {"keys": "2026-12", "passwords": "p1"}
    written = ensure_stack_secrets(applier.dynamic, "keys", namespace, owner, spec, both)
    assert sorted(written) == sorted(n for n in wanted if "jwt" not in n and "audit" not in n)
    renewed = contents()
    assert renewed["keys-jwt"] == rotated["keys-jwt"]
    for db in ("postgres", "clickhouse", "dragonfly"):
        assert renewed[f"keys-{db}-credentials"] != first[f"keys-{db}-credentials"], db
        assert renewed[f"keys-{db}-connection"]["url"] != first[f"keys-{db}-connection"]["url"]
    previous = renewed["keys-postgres-connection"]["previous-migration-url"]
    assert previous == first["keys-postgres-connection"]["migration-url"]
    new_pg = base64.b64decode(renewed["keys-postgres-credentials"]["POSTGRES_PASSWORD"]).decode()
    assert new_pg != pg
    assert new_pg in base64.b64decode(renewed["keys-postgres-connection"]["migration-url"]).decode()
    assert ensure_stack_secrets(applier.dynamic, "keys", namespace, owner, spec, both) == []

    # half a pair: the operator refuses to invent a password the database does not know
    secrets.delete(name="keys-dragonfly-connection", namespace=namespace)
    with pytest.raises(StackSecretError, match="keys-dragonfly-connection is missing"):
        ensure_stack_secrets(applier.dynamic, "keys", namespace, owner, spec, both)
    status = json.dumps(stacks(dynamic).get(name="keys", namespace=namespace).to_dict())
    assert pg not in status


def _minimal_crd(kind: str, plural: str) -> dict[str, Any]:
    """A stand-in for cert-manager's CRD (its API exists; nothing issues certificates)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.cert-manager.io"},
        "spec": {
            "group": "cert-manager.io",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


def test_with_cert_manager_installed_the_operator_asks_it_for_the_certificates(
    dynamic: Any, kube: Any, operator_kube: Any, namespace: str
) -> None:
    from kubernetes import dynamic as kdynamic

    from aitrading.operator.render import SERVICE_PORTS

    crds = dynamic.resources.get(
        api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition"
    )
    stand_ins = [_minimal_crd("Issuer", "issuers"), _minimal_crd("Certificate", "certificates")]
    for crd in stand_ins:
        crds.create(body=crd)
    try:
        operator_dynamic = None
        for _ in range(3000):  # until the new API is served and discovered
            try:
                operator_dynamic = kdynamic.DynamicClient(operator_kube)
                operator_dynamic.resources.get(api_version="cert-manager.io/v1", kind="Certificate")
                break
            except Exception:
                time.sleep(0.1)
        assert operator_dynamic is not None
        body = create(dynamic, namespace, {"version": "1.0.0"}, name="cm").to_dict()
        spec = TradingStackSpec.model_validate(body["spec"])
        reconcile(Applier(operator_dynamic), "cm", namespace, body["metadata"]["uid"], spec)
        certificates = dynamic.resources.get(api_version="cert-manager.io/v1", kind="Certificate")
        issued = {
            c["metadata"]["name"]: c["spec"]
            for c in certificates.get(namespace=namespace).to_dict()["items"]
        }
        assert issued["cm-ca"]["isCA"] is True
        for service in SERVICE_PORTS:
            wanted = issued[f"cm-{service}"]
            assert wanted["secretName"] == f"cm-{service}-tls"
            assert f"cm-{service}.{namespace}.svc" in wanted["dnsNames"]
            assert wanted["issuerRef"] == {"name": "cm-ca", "kind": "Issuer"}
        secrets = dynamic.resources.get(api_version="v1", kind="Secret")
        names = {s["metadata"]["name"] for s in secrets.get(namespace=namespace).to_dict()["items"]}
        assert "cm-ca" not in names  # cert-manager makes it, not the operator
    finally:
        for crd in stand_ins:
            crds.delete(name=crd["metadata"]["name"])
        for _ in range(1500):  # the other tests must not see cert-manager
            left = {c.metadata.name for c in crds.get().items}
            if not left & {c["metadata"]["name"] for c in stand_ins}:
                break
            time.sleep(0.2)


# Last in this module: it deletes and recreates the CRD the other tests use.
def test_the_operator_creates_its_crd_on_a_cold_start_as_its_service_account(
    dynamic: Any, operator_kube: Any
) -> None:
    """No CRD at all (installed without Helm's crds/, or deleted): the operator brings it."""
    from kubernetes import dynamic as kdynamic

    from aitrading.operator.run import ensure_crd, wait_until_served

    crds = dynamic.resources.get(
        api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition"
    )
    name = crd_manifest()["metadata"]["name"]
    for stack in stacks(dynamic).get().items:  # finalizers of earlier tests hold the CRD
        stacks(dynamic).patch(
            body={"metadata": {"finalizers": []}},
            name=stack.metadata.name,
            namespace=stack.metadata.namespace,
            content_type="application/merge-patch+json",
        )
    crds.delete(name=name)
    deadline = time.monotonic() + 300  # generous: a condition, not a speed
    while time.monotonic() < deadline:  # deletion finishes once the API is no longer served
        if name not in {c.metadata.name for c in crds.get().items}:
            break
        time.sleep(0.2)
    ensure_crd(kdynamic.DynamicClient(operator_kube))
    assert crds.get(name=name).metadata.name == name
    # kopf resolves its resources once: it starts only when they are served, so a fresh
    # discovery right after finds TradingStacks (no retry here).
    wait_until_served(lambda: kdynamic.DynamicClient(operator_kube))
    found = kdynamic.DynamicClient(operator_kube).resources.get(
        api_version=f"{GROUP}/{VERSION}", kind="TradingStack"
    )
    assert found.kind == "TradingStack"
