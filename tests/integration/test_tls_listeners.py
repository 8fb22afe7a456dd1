"""TLS 1.3 on every service listener, and HTTPS/WSS between services.

Each service, run as users run it (`aitrading serve`), with a certificate configured: a TLS
1.3 client that trusts the stack's CA is served; a client capped at TLS 1.2 and a plaintext
client are refused. Then a connector streams over wss:// to data-bridge, which stores
through database-service over https:// (verifying it against the CA, presenting its own
certificate and service token): the ticks are stored.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import os
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from aitrading.cli.mt5_sim_cmd import development_token
from aitrading.client.metatrader_connector.bridge_client import BridgeClient
from aitrading.core.infrastructure.config_manager import Settings, load_settings
from aitrading.core.stores.clickhouse import ClickHouseStore

from .conftest import env_for, free_port

pytestmark = pytest.mark.integration


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_pki(directory: Path) -> dict[str, Path]:
    """A CA and one certificate for 127.0.0.1/localhost (server and client use)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aitrading test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aitrading-service")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "ca": directory / "ca.pem",
        "cert": directory / "svc.pem",
        "key": directory / "svc.key",
    }
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(_pem_key(key))
    paths["key"].chmod(0o600)
    return paths


def trusting(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


@contextmanager
def serve(service: str, env: dict[str, str], port: int, ca: Path, log: Path) -> Iterator[str]:
    url = f"https://127.0.0.1:{port}"
    out = log.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "aitrading", "serve", service],
        env={**os.environ, **env},
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if (
                    httpx.get(f"{url}/health/live", verify=trusting(ca), timeout=2).status_code
                    == 200
                ):
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError(f"{service} did not answer over TLS: {log.read_text()[-3000:]}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        out.close()


def _handshake(port: int, ca: Path, maximum: ssl.TLSVersion) -> ssl.TLSVersion | None:
    import socket

    context = ssl.create_default_context(cafile=str(ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = maximum
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            negotiated = str(tls.version())  # e.g. "TLSv1.3"
            return ssl.TLSVersion[negotiated.replace(".", "_")]
    except (ssl.SSLError, ConnectionError):
        return None


@pytest.fixture
def tls_env(settings: Settings, key_file: Path, tmp_path: Path) -> dict[str, str]:
    del key_file
    pki = make_pki(tmp_path / "pki")
    env = env_for(settings, tmp_path, free_port(), free_port())
    env.update(
        AITRADING_SECURITY_TLS_CA_FILE=str(pki["ca"]),
        AITRADING_SECURITY_TLS_CERT_FILE=str(pki["cert"]),
        AITRADING_SECURITY_TLS_KEY_FILE=str(pki["key"]),
        AITRADING_SERVICES_API_GATEWAY_PORT=str(free_port()),
        AITRADING_SERVICES_TRADING_ENGINE_PORT=str(free_port()),
    )
    return env


@pytest.mark.parametrize(
    ("service", "port_variable"),
    [
        ("database-service", "AITRADING_SERVICES_DATABASE_SERVICE_PORT"),
        ("data-bridge", "AITRADING_SERVICES_DATA_BRIDGE_PORT"),
        ("api-gateway", "AITRADING_SERVICES_API_GATEWAY_PORT"),
        ("trading-engine", "AITRADING_SERVICES_TRADING_ENGINE_PORT"),
    ],
)
def test_each_service_serves_tls13_only(
    tls_env: dict[str, str],
    clickhouse: ClickHouseStore,
    tmp_path: Path,
    service: str,
    port_variable: str,
) -> None:
    del clickhouse
    port = int(tls_env[port_variable])
    ca = Path(tls_env["AITRADING_SECURITY_TLS_CA_FILE"])
    with serve(service, tls_env, port, ca, tmp_path / f"{service}.log"):
        assert _handshake(port, ca, ssl.TLSVersion.TLSv1_3) == ssl.TLSVersion.TLSv1_3
        assert _handshake(port, ca, ssl.TLSVersion.TLSv1_2) is None  # TLS 1.2 refused
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=5)  # plaintext refused


@pytest.mark.timeout(600)  # two TLS servers as processes, then two connectors: each step waits
async def test_ticks_travel_over_wss_and_https_between_services(
    tls_env: dict[str, str], clickhouse: ClickHouseStore, tmp_path: Path
) -> None:
    del clickhouse
    ca = Path(tls_env["AITRADING_SECURITY_TLS_CA_FILE"])
    dbs_port = int(tls_env["AITRADING_SERVICES_DATABASE_SERVICE_PORT"])
    bridge_port = int(tls_env["AITRADING_SERVICES_DATA_BRIDGE_PORT"])
    env = {
        **tls_env,
        "AITRADING_SERVICES_DATABASE_SERVICE_URL": f"https://127.0.0.1:{dbs_port}",
        "AITRADING_SERVICES_REQUIRE_SERVICE_IDENTITY": "true",
        # chdb is one process per data path, and this test process holds the session's.
        "AITRADING_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'clickhouse'}",
    }
    config = load_settings(environ=env).settings
    symbol = f"T{uuid.uuid4().hex[:7].upper()}"
    with (
        serve("database-service", env, dbs_port, ca, tmp_path / "dbs.log") as dbs,
        serve("data-bridge", env, bridge_port, ca, tmp_path / "bridge.log"),
    ):
        context = ssl.create_default_context(cafile=str(ca))
        client = BridgeClient(
            f"wss://127.0.0.1:{bridge_port}/api/v1/ingest",
            await development_token(config, "tls-connector"),
            ssl_context=context,
        )
        await client.connect()
        now = int(time.time() * 1000)
        await client.send_ticks(
            [
                {"symbol": symbol, "time_msc": now + i, "bid": 1.1, "ask": 1.2, "sequence": i}
                for i in range(5)
            ]
        )
        assert await client.wait_acked(30), client.stats
        await client.close()
        async with httpx.AsyncClient(verify=trusting(ca), timeout=20) as http:
            for _ in range(100):
                answer = await http.get(
                    f"{dbs}/api/v1/ticks",
                    params={"symbol": symbol, "start": 0, "end": 4_000_000_000_000},
                )
                assert answer.status_code == 200, answer.text
                if len(answer.json()["ticks"]) == 5:
                    break
                await asyncio.sleep(0.1)
            assert [t["sequence"] for t in answer.json()["ticks"]] == [0, 1, 2, 3, 4]
            # Stored, not spooled: the bridge's https:// call to database-service succeeded.
            ready = await http.get(f"https://127.0.0.1:{bridge_port}/health/ready")
            assert ready.json()["components"]["storage"]["status"] == "healthy", ready.text
        token = await development_token(config, "tls-connector")
        await _connector_over_wss(bridge_port, ca, token, tmp_path, dbs)


async def _connector_over_wss(port: int, ca: Path, token: str, tmp_path: Path, dbs: str) -> None:
    """The connector's five links over wss:// with the pinned CA: ticks arrive; pinned to a
    CA that did not sign the bridge's certificate, it connects nowhere and sends nothing."""
    from aitrading.client.metatrader_connector.connector import Connector, ConnectorOptions
    from aitrading.client.metatrader_connector.outbox import Outbox
    from aitrading.client.metatrader_connector.simulator_terminal import SimulatorTerminal
    from aitrading.client.metatrader_connector.terminal import TerminalTick

    async def bearer() -> str:
        return token

    symbol = f"W{uuid.uuid4().hex[:7].upper()}"
    now = int(time.time() * 1000)
    ticks = [TerminalTick(symbol, now + i, 1.1, 1.2, 0.0, 0, 0.0, 6) for i in range(20)]
    foreign = make_pki(tmp_path / "foreign")["ca"]
    outcomes = {}
    for name, trusted in (("pinned", ca), ("foreign", foreign)):
        pinned = ssl.create_default_context(cafile=str(trusted))
        pinned.minimum_version = ssl.TLSVersion.TLSv1_3
        terminal = SimulatorTerminal()
        terminal.record(ticks)
        connector = Connector(
            ConnectorOptions(
                url=f"wss://127.0.0.1:{port}/api/v1/ingest",
                source=name,
                symbols=(symbol,),
                ssl_context=pinned,
                account_every_s=3600,
                backoff_cap_s=0.5,
            ),
            terminal,
            Outbox(tmp_path / f"{name}.db"),
            bearer,
        )
        await connector.start()
        try:
            deadline = time.monotonic() + 30
            while connector.stats.frames_acked == 0 and time.monotonic() < deadline:
                if name == "foreign" and all(link.last_error for link in connector.links):
                    break
                await asyncio.sleep(0.1)
            outcomes[name] = (
                connector.stats.frames_acked,
                [link.last_error for link in connector.links],
            )
        finally:
            await connector.stop()
    assert outcomes["pinned"][0] > 0, outcomes
    assert outcomes["foreign"][0] == 0
    assert all("CERTIFICATE_VERIFY_FAILED" in e for e in outcomes["foreign"][1]), outcomes


@pytest.mark.timeout(600)  # four TLS servers as processes, each waited for
def test_the_gateway_is_ready_with_every_upstream_over_https(
    tls_env: dict[str, str], clickhouse: ClickHouseStore, tmp_path: Path
) -> None:
    """As in Kubernetes: every peer at an https:// URL. The gateway's readiness probes of its
    upstreams trust the stack's CA like its proxied requests do (with the system CAs they
    failed, and the gateway never became ready in a pod)."""
    del clickhouse
    ca = Path(tls_env["AITRADING_SECURITY_TLS_CA_FILE"])
    ports = {
        name: int(tls_env[f"AITRADING_SERVICES_{name.upper().replace('-', '_')}_PORT"])
        for name in ("database-service", "data-bridge", "trading-engine", "api-gateway")
    }
    env = {
        **tls_env,
        "AITRADING_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'clickhouse'}",
        **{
            f"AITRADING_SERVICES_{name.upper().replace('-', '_')}_URL": f"https://127.0.0.1:{port}"
            for name, port in ports.items()
            if name != "api-gateway"
        },
    }
    with (
        serve("database-service", env, ports["database-service"], ca, tmp_path / "dbs.log"),
        serve("data-bridge", env, ports["data-bridge"], ca, tmp_path / "bridge.log"),
        serve("trading-engine", env, ports["trading-engine"], ca, tmp_path / "engine.log"),
        serve("api-gateway", env, ports["api-gateway"], ca, tmp_path / "gw.log") as gateway,
    ):
        answer: dict[str, Any] = {}
        deadline = time.monotonic() + 120  # generous: health is checked every 2 s
        while time.monotonic() < deadline:
            answer = httpx.get(f"{gateway}/health/ready", verify=trusting(ca), timeout=10).json()
            upstreams = {k: v for k, v in answer["components"].items() if k.startswith("upstream:")}
            if len(upstreams) == 3 and all(v["status"] == "healthy" for v in upstreams.values()):
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"the gateway's upstreams never became healthy: {answer}")
        assert answer["status"] == "healthy", answer
