"""The Secrets the operator generates: what each holds, and that pairs agree."""

from __future__ import annotations

from urllib.parse import urlsplit

from aitrading.operator.crd_model import TradingStackSpec
from aitrading.operator.stack_secrets import database_secrets, wanted_secrets


def spec(**changes: object) -> TradingStackSpec:
    return TradingStackSpec.model_validate({"version": "1", **changes})


def test_default_stack_needs_keys_and_one_pair_per_in_cluster_database() -> None:
    names = [g.names for g in wanted_secrets("s", "ns", spec())]
    assert names == [
        ("s-jwt",),
        ("s-audit-key",),
        ("s-postgres-credentials", "s-postgres-connection"),
        ("s-clickhouse-credentials", "s-clickhouse-connection"),
        ("s-dragonfly-credentials", "s-dragonfly-connection"),
    ]
    brought = spec(
        security={"jwtKeySecret": "mine", "auditKeySecret": "mine-too"},
        databases={
            "postgres": {"enabled": False, "externalSecret": "pg"},
            "clickhouse": {"embedded": True},
        },
    )
    assert [g.names for g in wanted_secrets("s", "ns", brought)] == [
        ("s-dragonfly-credentials", "s-dragonfly-connection")
    ]


def test_postgres_pair_agrees_and_the_services_get_the_runtime_login_over_tls() -> None:
    credentials, connection = database_secrets("s", "ns", "postgres")
    runtime, owner = urlsplit(connection["url"]), urlsplit(connection["migration-url"])
    assert owner.username == credentials["POSTGRES_USER"] == "aitrading_owner"
    assert owner.password == credentials["POSTGRES_PASSWORD"]
    assert runtime.username == "aitrading_app"
    assert runtime.password == connection["runtime-password"]
    assert runtime.password != owner.password
    assert runtime.hostname == "s-postgres.ns.svc"
    assert "sslmode=verify-full" in runtime.query
    assert credentials["POSTGRES_DB"] == runtime.path.strip("/")


def test_dragonfly_pair_agrees_over_tls_and_passwords_are_fresh_each_time() -> None:
    credentials, connection = database_secrets("s", "ns", "dragonfly")
    url = urlsplit(connection["url"])
    assert url.scheme == "rediss"
    assert url.password == credentials["DFLY_requirepass"]
    assert len(url.password or "") >= 40
    assert database_secrets("s", "ns", "dragonfly")[0] != credentials


def test_keys_are_ed25519_pems() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    jwt = wanted_secrets("s", "ns", spec())[0]
    (data,) = jwt.make()
    assert isinstance(load_pem_private_key(data["key.pem"].encode(), None), Ed25519PrivateKey)
    assert jwt.rotates
