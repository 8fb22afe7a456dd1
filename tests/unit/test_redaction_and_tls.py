from __future__ import annotations

import ssl

import pytest

from aitrading.core.infrastructure.config_manager import load_settings
from aitrading.core.security.db_security_manager import client_context
from aitrading.core.security.redaction import redact
from aitrading.core.security.tls import (
    InsecureTransportError,
    check_transport,
    is_loopback,
)
from aitrading.core.stores.base import StoreNotConfiguredError
from aitrading.core.stores.redis_store import RedisStore


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("connect postgresql://app:s3cretpw@db:5432/x failed", "s3cretpw"),
        ("password=hunter22 host=db", "hunter22"),
        ("Authorization: Bearer abcdefghijklmnop", "abcdefghijklmnop"),
        ("token eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl", "eyJzdWIiOiJ4In0"),
        ('{"api_key": "k-123456"}', "k-123456"),
    ],
)
def test_redact_masks_secrets(text: str, secret: str) -> None:
    assert secret not in redact(text)
    assert "***" in redact(text)


def test_redact_keeps_ordinary_text() -> None:
    assert (
        redact("order 42 rejected: insufficient margin") == "order 42 rejected: insufficient margin"
    )


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("10.0.0.5", False),
        ("db.internal", False),
        (None, False),
        ("", False),
    ],
)
def test_is_loopback(host: str | None, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_plaintext_outside_loopback_is_refused_with_the_setting_to_change() -> None:
    check_transport(host="127.0.0.1", encrypted=False, setting="X", store="s")
    check_transport(host="db.internal", encrypted=True, setting="X", store="s")
    with pytest.raises(InsecureTransportError, match="AITRADING_REDIS_URL"):
        check_transport(
            host="db.internal", encrypted=False, setting="AITRADING_REDIS_URL", store="redis"
        )


def test_client_context_floor_is_tls13_with_verification() -> None:
    context = client_context()
    assert context.minimum_version is ssl.TLSVersion.TLSv1_3
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname


def test_redis_factory_refuses_plaintext_remote_before_connecting() -> None:
    settings = load_settings(
        environ={"AITRADING_REDIS_URL": "redis://:pw@dragonfly.prod:6379/0"}
    ).settings
    with pytest.raises(InsecureTransportError, match=r"dragonfly\.prod"):
        RedisStore.create(settings)


def test_redis_factory_accepts_tls_remote_with_tls13_floor() -> None:
    settings = load_settings(
        environ={"AITRADING_REDIS_URL": "rediss://:pw@dragonfly.prod:6379/0"}
    ).settings
    store = RedisStore.create(settings)  # no connection yet: pools connect lazily
    kwargs = store.client.connection_pool.connection_kwargs
    assert kwargs["ssl_min_version"] is ssl.TLSVersion.TLSv1_3
    assert store.client.connection_pool.max_connections == settings.redis.max_connections


async def test_unconfigured_weaviate_and_arango_name_their_setting() -> None:
    from aitrading.core.stores.arango_store import ArangoStore
    from aitrading.core.stores.weaviate_store import WeaviateStore

    settings = load_settings(environ={}).settings
    with pytest.raises(StoreNotConfiguredError, match="set AITRADING_WEAVIATE_URL"):
        await WeaviateStore.create(settings)
    with pytest.raises(StoreNotConfiguredError, match="set AITRADING_ARANGO_URL"):
        ArangoStore.create(settings)
