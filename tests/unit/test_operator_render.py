"""The operator's pure parts: the CRD from one source, and rendered objects that validate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from pydantic import ValidationError

from aitrading.operator.crd_model import TradingStackSpec, crd_manifest
from aitrading.operator.generate_crd import rendered
from aitrading.operator.render import SERVICE_PORTS, phases, render

ROOT = Path(__file__).parents[2]


def spec(**changes: object) -> TradingStackSpec:
    return TradingStackSpec.model_validate({"version": "1.2.3", **changes})


def _service_workloads(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        o
        for o in objects
        if o["kind"] in ("Deployment", "StatefulSet")
        and o["metadata"]["labels"]["app.kubernetes.io/component"] in SERVICE_PORTS
    ]


def test_committed_generated_files_match_their_sources() -> None:
    from aitrading.operator.generate_crd import outputs

    for path, text in outputs(ROOT).items():
        assert path.read_text() == text, f"{path} is stale: run `make crd`"
    assert rendered().startswith("# Generated")


def test_crd_has_short_name_status_printer_columns_and_cel_rules() -> None:
    crd = crd_manifest()
    version = crd["spec"]["versions"][0]
    assert crd["spec"]["names"]["shortNames"] == ["ts"]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Ready",
        "Phase",
        "Version",
        "Age",
    ]
    schema = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert schema["required"] == ["version"]
    assert schema["properties"]["deletionPolicy"]["enum"] == ["Retain", "Delete"]
    assert len(schema["x-kubernetes-validations"]) == 4
    assert "$ref" not in str(schema)  # structural: no references


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"services": {"apiGateway": {"replicas": -1}}}, "replicas"),
        ({"deletionPolicy": "Shred"}, "deletionPolicy"),
        ({"databases": {"postgres": {"storageSize": "lots"}}}, "storageSize"),
        ({"logging": {"enforceSchedule": "hourly"}}, "enforceSchedule"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_the_model_refuses_bad_specs(bad: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        spec(**bad)


def test_every_rendered_object_validates_against_kubernetes_1_31_strict() -> None:
    full = spec(databases={"weaviate": {"enabled": True}, "arango": {"enabled": True}})
    objects = render("prod", "trading", full)
    kinds = sorted({o["kind"] for o in objects})
    assert kinds == [
        "ConfigMap",
        "CronJob",
        "Deployment",
        "NetworkPolicy",
        "PersistentVolumeClaim",
        "PodDisruptionBudget",
        "Service",
        "StatefulSet",
    ]
    for obj in objects:
        kubernetes_validate.validate(obj, "1.31", strict=True)


def test_rollout_order_and_external_databases() -> None:
    external = spec(databases={"postgres": {"enabled": False, "externalSecret": "pg-url"}})
    ordered = phases("s", "ns", external)
    first = {(o["kind"], o["metadata"]["name"]) for o in ordered[0]}
    assert ("StatefulSet", "s-clickhouse") in first
    assert ("StatefulSet", "s-postgres") not in first  # external: no StatefulSet
    assert [o["metadata"]["name"] for o in ordered[1]] == ["s-database-service"] * 3
    assert [o["kind"] for o in ordered[3]] == ["PersistentVolumeClaim", "CronJob"]
    dbs = ordered[1][0]["spec"]["template"]["spec"]["containers"][0]
    assert {
        "name": "AITRADING_POSTGRES_DSN",
        "valueFrom": {"secretKeyRef": {"name": "pg-url", "key": "url"}},
    } in dbs["env"]
    assert dbs["args"] == ["serve", "database-service"]


def test_paused_scales_to_zero_and_suspends_the_cron_job() -> None:
    objects = render("s", "ns", spec(paused=True))
    assert all(
        o["spec"]["replicas"] == 0 for o in objects if o["kind"] in ("Deployment", "StatefulSet")
    )
    assert next(o for o in objects if o["kind"] == "CronJob")["spec"]["suspend"] is True


def test_rbac_covers_exactly_what_is_rendered() -> None:
    from aitrading.operator.rbac import cluster_role

    role = cluster_role()
    kubernetes_validate.validate(role, "1.31", strict=True)
    granted = {
        (g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
    }
    plural = {
        "ConfigMap": "configmaps",
        "Service": "services",
        "Deployment": "deployments",
        "StatefulSet": "statefulsets",
        "CronJob": "cronjobs",
        "NetworkPolicy": "networkpolicies",
        "PodDisruptionBudget": "poddisruptionbudgets",
        "PersistentVolumeClaim": "persistentvolumeclaims",
    }
    from aitrading.operator.monitoring import service_monitors

    plural["ServiceMonitor"] = "servicemonitors"
    full = spec(databases={"weaviate": {"enabled": True}, "arango": {"enabled": True}})
    for obj in [*render("s", "ns", full), *service_monitors("s", "ns", full)]:
        group = obj["apiVersion"].rpartition("/")[0]
        assert (group, plural[obj["kind"]]) in granted, obj["kind"]
    assert not any("*" in rule["verbs"] or "*" in rule["resources"] for rule in role["rules"])


def test_services_talk_https_with_mounted_certificates() -> None:
    objects = render("s", "ns", spec())
    config = next(o for o in objects if o["kind"] == "ConfigMap")["data"]
    for variable in (
        "AITRADING_SERVICES_DATABASE_SERVICE_URL",
        "AITRADING_SERVICES_DATA_BRIDGE_URL",
        "AITRADING_SERVICES_TRADING_ENGINE_URL",
    ):
        assert config[variable].startswith("https://s-"), variable
    assert config["AITRADING_SECURITY_TLS_CERT_FILE"].startswith("/var/run/secrets/aitrading/tls")
    for deployment in _service_workloads(objects):
        pod = deployment["spec"]["template"]["spec"]
        service = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["tls"]["secret"]["secretName"] == f"s-{service}-tls"
        container = pod["containers"][0]
        assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    own = render("s", "ns", spec(security={"tlsSecret": "corp-tls"}))
    for deployment in _service_workloads(own):
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        assert volumes["tls"]["secret"]["secretName"] == "corp-tls"


def test_service_certificates_name_the_service_and_chain_to_the_stack_ca() -> None:
    from cryptography import x509

    from aitrading.operator.service_certs import new_ca, service_certificate

    ca_key, ca_cert = new_ca("s")
    _, cert_pem = service_certificate(ca_key, ca_cert, "s", "ns", "database-service")
    cert = x509.load_pem_x509_certificate(cert_pem)
    ca = x509.load_pem_x509_certificate(ca_cert)
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "s-database-service.ns.svc" in names.get_values_for_type(x509.DNSName)


def test_no_pod_gets_service_link_variables() -> None:
    """A stack named `aitrading` would otherwise get AITRADING_…_SERVICE_PORT_… variables,
    which the strict settings loader refuses: every pod crash-looped on a real cluster."""
    full = spec(databases={"weaviate": {"enabled": True}, "arango": {"enabled": True}})
    pods = []
    for obj in render("aitrading", "ns", full):
        if obj["kind"] in ("Deployment", "StatefulSet"):
            pods.append(obj["spec"]["template"]["spec"])
        elif obj["kind"] == "CronJob":
            pods.append(obj["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    assert pods
    assert all(pod["enableServiceLinks"] is False for pod in pods)


def test_every_deployment_runs_a_service_the_cli_can_serve() -> None:
    """A Deployment whose `serve <name>` the image does not know crash-loops for ever (the
    trading-engine did, before it existed)."""
    from aitrading.cli.serve_cmd import Service

    served = {
        tuple(o["spec"]["template"]["spec"]["containers"][0].get("args", ()))
        for o in render("s", "ns", spec())
        if o["kind"] in ("Deployment", "StatefulSet")
        and o["metadata"]["labels"]["app.kubernetes.io/component"] in SERVICE_PORTS
    }
    assert served == {("serve", s.value) for s in Service}


def test_the_trading_engine_is_reached_by_the_gateway_and_the_bridge_only() -> None:
    objects = render("s", "ns", spec())
    policy = next(
        o
        for o in objects
        if o["kind"] == "NetworkPolicy" and o["metadata"]["name"].endswith("allow-trading-engine")
    )
    sources = [
        rule["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        for rule in policy["spec"]["ingress"][0]["from"]
    ]
    assert sorted(sources) == ["api-gateway", "data-bridge"]


def _workload(objects: list[dict[str, Any]], component: str) -> dict[str, Any]:
    return next(
        o
        for o in objects
        if o["kind"] in ("Deployment", "StatefulSet")
        and o["metadata"]["labels"]["app.kubernetes.io/component"] == component
    )


def test_the_spool_lives_on_a_volume_claim_per_bridge_replica() -> None:
    """An ack given while database-service is away is only as safe as the spool: on an
    emptyDir it went with the pod."""
    bridge = _workload(
        render("s", "ns", spec(services={"dataBridge": {"replicas": 2}})), "data-bridge"
    )
    assert bridge["kind"] == "StatefulSet"
    assert bridge["spec"]["replicas"] == 2
    assert [c["metadata"]["name"] for c in bridge["spec"]["volumeClaimTemplates"]] == ["data"]
    pod = bridge["spec"]["template"]["spec"]
    assert "data" not in {v["name"] for v in pod["volumes"]}  # the claim, not an emptyDir
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["data"] == "/var/lib/aitrading"  # data_dir: the spool is data-bridge/spool


def test_embedded_clickhouse_runs_inside_one_database_service_on_its_claim() -> None:
    embedded = spec(
        databases={"clickhouse": {"embedded": True}},
        services={"databaseService": {"replicas": 3}},
    )
    objects = render("s", "ns", embedded)
    assert not any(o["metadata"]["name"] == "s-clickhouse" for o in objects)
    owner = _workload(objects, "database-service")
    assert owner["kind"] == "StatefulSet"
    assert owner["spec"]["replicas"] == 1
    env = {e["name"]: e for e in owner["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["AITRADING_CLICKHOUSE_DSN"]["value"] == "chdb:///var/lib/aitrading/clickhouse"
    # a StatefulSet of the server otherwise, with its connection from the operator's Secret
    server = render("s", "ns", spec())
    assert _workload(server, "clickhouse")["kind"] == "StatefulSet"
    assert _workload(server, "database-service")["kind"] == "Deployment"
    with pytest.raises(ValidationError):
        spec(databases={"clickhouse": {"embedded": True, "externalSecret": "ch"}}).model_dump()


def test_the_crd_refuses_embedded_with_an_external_clickhouse() -> None:
    rules = crd_manifest()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][
        "spec"
    ]["x-kubernetes-validations"]
    assert any("embedded and externalSecret" in r["message"] for r in rules)


def test_databases_serve_tls_13_with_their_own_certificates_and_credentials() -> None:
    objects = render("s", "ns", spec())
    postgres = _workload(objects, "postgres")
    pod = postgres["spec"]["template"]["spec"]
    args = pod["containers"][0]["args"]
    assert "ssl=on" in args
    assert "ssl_min_protocol_version=TLSv1.3" in args
    secrets = {v["name"]: v.get("secret", {}).get("secretName") for v in pod["volumes"]}
    assert secrets["tls-secret"] == "s-postgres-tls"
    # the key is handed to the server's own user with mode 0600, as PostgreSQL demands
    assert "-m 0600" in pod["initContainers"][0]["command"][-1]
    assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": "s-postgres-credentials"}}]
    dragonfly = _workload(objects, "dragonfly")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "DFLY_tls", "value": "true"} in dragonfly["env"]
    assert dragonfly["envFrom"] == [{"secretRef": {"name": "s-dragonfly-credentials"}}]


def test_database_service_migrates_then_makes_the_runtime_login_first() -> None:
    owner = _workload(render("s", "ns", spec()), "database-service")
    init = owner["spec"]["template"]["spec"]["initContainers"][0]
    script = init["command"][-1]
    assert script.startswith(
        "aitrading db adopt-password && aitrading db migrate && aitrading db runtime-login"
        " aitrading_app"
    )
    env = {e["name"]: e for e in init["env"]}
    assert env["AITRADING_POSTGRES_MIGRATION_DSN"]["valueFrom"]["secretKeyRef"] == {
        "name": "s-postgres-connection",
        "key": "migration-url",
    }
    # the services themselves never see the owner's DSN
    for workload in _service_workloads(render("s", "ns", spec())):
        names = {e["name"] for e in workload["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert "AITRADING_POSTGRES_MIGRATION_DSN" not in names


def test_services_mount_the_operators_keys_unless_the_spec_brings_them() -> None:
    gateway = _workload(render("s", "ns", spec()), "api-gateway")["spec"]["template"]["spec"]
    volumes = {v["name"]: v["secret"]["secretName"] for v in gateway["volumes"] if "secret" in v}
    assert volumes["jwt"] == "s-jwt"
    assert volumes["audit-key"] == "s-audit-key"
    env = {e["name"]: e.get("value") for e in gateway["containers"][0]["env"]}
    assert env["AITRADING_SECURITY_AUDIT_SIGNING_KEY_FILE"].endswith("/audit/key.pem")
    own = spec(security={"jwtKeySecret": "corp-jwt", "auditKeySecret": "corp-audit"})
    gateway = _workload(render("s", "ns", own), "api-gateway")["spec"]["template"]["spec"]
    volumes = {v["name"]: v["secret"]["secretName"] for v in gateway["volumes"] if "secret" in v}
    assert volumes["jwt"] == "corp-jwt"
    assert volumes["audit-key"] == "corp-audit"


def test_services_spread_over_nodes_with_a_disruption_budget_each() -> None:
    objects = render("s", "ns", spec(services={"apiGateway": {"replicas": 2}}))
    gateway = _workload(objects, "api-gateway")
    assert gateway["spec"]["replicas"] == 2
    term = gateway["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ][0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    budgets = {
        o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "PodDisruptionBudget"
    }
    assert set(budgets) == {f"s-{service}" for service in SERVICE_PORTS}
    assert budgets["s-api-gateway"]["maxUnavailable"] == 1


@pytest.mark.parametrize(
    ("image", "mirrored"),
    [
        ("postgres:17.2", "mirror.corp:5000/library/postgres:17.2"),
        ("semitechnologies/weaviate:1.35.2", "mirror.corp:5000/semitechnologies/weaviate:1.35.2"),
        (
            "docker.dragonflydb.io/dragonflydb/dragonfly:v1",
            "mirror.corp:5000/dragonflydb/dragonfly:v1",
        ),
        ("localhost/aitrading-test/postgres:15", "mirror.corp:5000/aitrading-test/postgres:15"),
    ],
)
def test_a_registry_override_keeps_each_images_path(image: str, mirrored: str) -> None:
    from aitrading.operator.render import with_registry

    assert with_registry(image, "mirror.corp:5000") == mirrored
    assert with_registry(image, None) == image


def test_every_image_of_a_stack_comes_from_its_registry() -> None:
    objects = render("s", "ns", spec(imageRegistry="mirror.corp"))
    images = [
        c["image"]
        for o in objects
        if o["kind"] in ("Deployment", "StatefulSet")
        for c in o["spec"]["template"]["spec"]["containers"]
        + o["spec"]["template"]["spec"].get("initContainers", [])
    ]
    assert images
    assert all(i.startswith("mirror.corp/") for i in images), images
    assert "mirror.corp/aitrading/aitrading:1.2.3" in images


def test_the_retention_job_enforces_the_specs_days_and_keeps_cold_files_on_a_claim() -> None:
    objects = render("s", "ns", spec(logging={"retentionDays": {"debug": 3, "critical": 400}}))
    job = next(o for o in objects if o["kind"] == "CronJob")["spec"]["jobTemplate"]["spec"]
    pod = job["template"]["spec"]
    args = pod["containers"][0]["args"]
    assert args[:2] == ["logs", "enforce"]
    pairs = dict(a.split("=") for a in args[3::2])
    assert pairs == {"DEBUG": "3", "INFO": "30", "WARNING": "90", "ERROR": "180", "CRITICAL": "400"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "s-logs"
    claim = next(o for o in objects if o["kind"] == "PersistentVolumeClaim")
    assert claim["metadata"]["name"] == "s-logs"


def test_volume_claims_are_not_owned_by_the_stack() -> None:
    """Owned, the garbage collector would delete the cold log tier with the stack even under
    deletionPolicy Retain (the e2e deletion test found it)."""
    from aitrading.operator.reconcile import owner_reference, with_owner

    owner = owner_reference("s", "uid-1")
    for manifest in render("s", "ns", spec()):
        owned = "ownerReferences" in with_owner(manifest, owner)["metadata"]
        assert owned == (manifest["kind"] != "PersistentVolumeClaim"), manifest["kind"]


def test_a_password_rotation_restarts_every_workload_but_postgres() -> None:
    from aitrading.operator.password_rollout import (
        PASSWORD_ROTATION_STAMP,
        stamp_password_rotation,
    )

    manifests = render("s", "ns", spec())
    for manifest in manifests:
        stamp_password_rotation(manifest, "r1")
    stamped, untouched = set(), set()
    for manifest in manifests:
        if manifest["kind"] not in ("Deployment", "StatefulSet"):
            continue
        annotations = manifest["spec"]["template"].get("metadata", {}).get("annotations") or {}
        component = manifest["metadata"]["labels"]["app.kubernetes.io/component"]
        (stamped if annotations.get(PASSWORD_ROTATION_STAMP) == "r1" else untouched).add(component)
    assert untouched == {"postgres"}
    assert {"api-gateway", "data-bridge", "database-service", "trading-engine"} <= stamped
    assert "dragonfly" in stamped
    fresh = render("s", "ns", spec())
    for manifest in fresh:
        stamp_password_rotation(manifest, None)  # no rotation asked: templates unchanged
    assert fresh == render("s", "ns", spec())


def test_database_service_adopts_a_rotated_owner_password_before_it_migrates() -> None:
    manifests = render("s", "ns", spec())
    dbs = next(m for m in manifests if m["metadata"]["name"] == "s-database-service")
    init = dbs["spec"]["template"]["spec"]["initContainers"][0]
    script = init["command"][-1]
    assert script.index("db adopt-password") < script.index("db migrate")
    previous = next(
        e for e in init["env"] if e["name"] == "AITRADING_POSTGRES_PREVIOUS_MIGRATION_DSN"
    )
    assert previous["valueFrom"]["secretKeyRef"] == {
        "name": "s-postgres-connection",
        "key": "previous-migration-url",
        "optional": True,
    }


def test_the_retention_job_mounts_its_certificate_and_the_stack_ca() -> None:
    """Its databases take TLS 1.3 only: without the CA it could not connect (an in-cluster
    run of the CronJob found it)."""
    job = next(m for m in render("s", "ns", spec()) if m["kind"] == "CronJob")
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["tls"] == "/var/run/secrets/aitrading/tls"
    assert volumes["tls"]["secret"]["secretName"] == "s-logs-enforce-tls"


def test_the_postgres_statefulset_is_ready_when_it_serves_not_when_it_listens() -> None:
    """tests/integration/test_database_probes.py runs this probe against a real server."""
    objects = render("s", "ns", spec())
    sets = {o["metadata"]["name"]: o for o in objects if o["kind"] == "StatefulSet"}
    probe = sets["s-postgres"]["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    assert probe["exec"]["command"][0] == "pg_isready"
    assert "tcpSocket" not in probe
