"""Real embedded servers for the integration tests: started once per session, then removed."""

from __future__ import annotations

import contextlib
import os
import random
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from aitrading.core.infrastructure.config_manager import Settings, load_settings
from aitrading.core.stores.clickhouse import ClickHouseStore
from aitrading.core.stores.embedded import EmbeddedPostgres, EmbeddedRedis
from aitrading.core.stores.postgres import PostgresStore
from aitrading.core.stores.redis_store import RedisStore


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_EPHEMERAL_LOW = _ephemeral_low()
_ports = random.Random()
_handed_out: set[int] = set()


def free_port() -> int:
    """A port to listen on, below the kernel's ephemeral range.

    Asking the kernel for port 0 hands out an *ephemeral* port, which an outgoing connection
    of this busy test process (Redis, PostgreSQL, HTTP pools) may take as its local port
    before the server binds it — "address already in use" in CI. Ports below the ephemeral
    range are never given to outgoing connections; a bind test skips those in use.

    A port is handed out once per session: a fixture that takes three before it binds any
    (`gateway_stack`) could otherwise be given one twice, and a server then exits at start.
    """
    high = max(_EPHEMERAL_LOW - 1, 1025)
    for _ in range(500):
        port = _ports.randint(max(1025, high - 12000), high)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            _handed_out.add(port)
            return port
    with socket.socket() as sock:  # a crowded machine: let the kernel choose
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    _handed_out.add(port)
    return port


def embedded_env(data_dir: Path) -> dict[str, str]:
    """Environment for a fresh, isolated set of embedded stores."""
    return {
        "AITRADING_DATA_DIR": str(data_dir),
        "AITRADING_POSTGRES_PORT": str(free_port()),
        "AITRADING_REDIS_PORT": str(free_port()),
        "AITRADING_SERVICES_DATABASE_SERVICE_PORT": str(free_port()),
        "AITRADING_SERVICES_DATA_BRIDGE_PORT": str(free_port()),
        "AITRADING_SERVICES_TRADING_ENGINE_PORT": str(free_port()),
        "AITRADING_SERVICES_API_GATEWAY_PORT": str(free_port()),
    }


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    data_dir = tmp_path_factory.mktemp("stores")
    loaded = load_settings(environ=embedded_env(data_dir)).settings
    postgres = EmbeddedPostgres(loaded)
    redis_server = EmbeddedRedis(loaded)
    postgres.start()
    try:
        redis_server.start()
        yield loaded
    finally:
        redis_server.stop()
        postgres.stop()


@pytest.fixture(scope="session")
async def postgres(settings: Settings) -> AsyncIterator[PostgresStore]:
    store = await PostgresStore.create(settings)
    yield store
    await store.close()


@pytest.fixture(scope="session")
async def migrated(settings: Settings, postgres: PostgresStore) -> PostgresStore:
    """The session's database at the head revision (library code never creates schema)."""
    from aitrading.services.database_service.schema.postgres import migrate

    await migrate(settings)
    return postgres


@pytest.fixture(scope="session")
async def redis_store(settings: Settings) -> AsyncIterator[RedisStore]:
    store = RedisStore.create(settings)
    yield store
    await store.close()


@pytest.fixture(scope="session")
async def clickhouse(settings: Settings) -> AsyncIterator[ClickHouseStore]:
    """chdb allows one data path per process, so the whole session shares this one."""
    store = await ClickHouseStore.create(settings)
    yield store
    await store.close()


WEAVIATE_BIN = Path(
    os.environ.get(
        "AITRADING_WEAVIATE_BIN", Path(__file__).parents[2] / ".cache/bin/weaviate-server"
    )
)


@pytest.fixture(scope="session")
def weaviate_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real weaviate-server on loopback (built by `make store-bin`), persistence in tmp."""
    if not WEAVIATE_BIN.is_file():
        pytest.skip(f"no weaviate-server at {WEAVIATE_BIN}: run `make store-bin` to build it")
    http_port, grpc_port = free_port(), free_port()
    data = tmp_path_factory.mktemp("weaviate")
    env = {
        **os.environ,
        "PERSISTENCE_DATA_PATH": str(data),
        "AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED": "true",
        "DEFAULT_VECTORIZER_MODULE": "none",
        "ENABLE_MODULES": "",
        "DISABLE_TELEMETRY": "true",
        "CLUSTER_HOSTNAME": "node1",
        "CLUSTER_ADVERTISE_ADDR": "127.0.0.1",
        "CLUSTER_BIND_ADDR": "127.0.0.1",
        "CLUSTER_GOSSIP_BIND_PORT": str(free_port()),
        "CLUSTER_DATA_BIND_PORT": str(free_port()),
        "RAFT_BOOTSTRAP_EXPECT": "1",
        "GRPC_PORT": str(grpc_port),
    }
    raft = free_port()
    env.update(
        RAFT_PORT=str(raft), RAFT_INTERNAL_RPC_PORT=str(free_port()), RAFT_JOIN=f"node1:{raft}"
    )
    log = (data / "weaviate.log").open("wb")
    proc = subprocess.Popen(
        [str(WEAVIATE_BIN), "--host", "127.0.0.1", "--port", str(http_port), "--scheme", "http"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert proc.poll() is None, (data / "weaviate.log").read_text()[-2000:]
            try:
                if httpx.get(f"{url}/v1/.well-known/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError("weaviate-server did not become ready in 90 s")
        yield {"AITRADING_WEAVIATE_URL": url, "AITRADING_WEAVIATE_GRPC_PORT": str(grpc_port)}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def env_for(settings: Settings, data_dir: Path, dbs_port: int, bridge_port: int) -> dict[str, str]:
    return {
        "AITRADING_DATA_DIR": str(data_dir),
        # the session's servers, reached by DSN so that this data dir holds only bridge state
        "AITRADING_POSTGRES_DSN": _dsn(settings),
        "AITRADING_REDIS_URL": _redis(settings),
        "AITRADING_CLICKHOUSE_DSN": f"chdb://{settings.data_dir.resolve() / 'clickhouse'}",
        "AITRADING_SECURITY_JWT_KEY_FILE": str(settings.data_dir.resolve() / "jwt.pem"),
        "AITRADING_SERVICES_DATABASE_SERVICE_PORT": str(dbs_port),
        "AITRADING_SERVICES_DATA_BRIDGE_PORT": str(bridge_port),
        "AITRADING_HUB_HEALTH_INTERVAL_S": "0.2",
    }


def _dsn(settings: Settings) -> str:
    from aitrading.core.stores.postgres import postgres_dsn

    return postgres_dsn(settings)


def _redis(settings: Settings) -> str:
    from aitrading.core.stores.redis_store import redis_url

    return redis_url(settings)


@pytest.fixture(scope="session")
def key_file(settings: Settings) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = settings.data_dir.resolve() / "jwt.pem"
    if not path.exists():
        path.write_bytes(
            Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return path


@pytest.fixture
async def stack(
    settings: Settings, clickhouse: ClickHouseStore, key_file: Path, tmp_path: Path
) -> AsyncIterator[dict[str, Any]]:
    """database-service and data-bridge on loopback ports, both in this process."""
    from aitrading.cli.mt5_sim_cmd import development_token
    from aitrading.services.data_bridge.app import create_app as bridge_app
    from aitrading.services.database_service.app import create_app as database_app

    from .servers import serving

    del clickhouse, key_file
    dbs_port, bridge_port = free_port(), free_port()
    bridge_settings = load_settings(environ=env_for(settings, tmp_path, dbs_port, bridge_port))
    database = database_app(bridge_settings.settings, CollectorRegistry())
    bridge = bridge_app(bridge_settings.settings, CollectorRegistry())

    async with serving(database, dbs_port), serving(bridge, bridge_port):
        token = await development_token(bridge_settings.settings, f"conn-{uuid.uuid4().hex[:6]}")
        yield {
            "settings": bridge_settings.settings,
            "token": token,
            "ingest": f"ws://127.0.0.1:{bridge_port}/api/v1/ingest",
            "stream": f"ws://127.0.0.1:{bridge_port}/api/v1/stream",
            "bridge": f"http://127.0.0.1:{bridge_port}",
            "dbs": f"http://127.0.0.1:{dbs_port}",
        }


def session_audit_key(settings: Settings) -> Path:
    """The audit checkpoint key of every gateway in this session: they all sign into the same
    audit log, and checkpoints signed with a second key make the chain fail verification."""
    from aitrading.core.security.audit_logger import write_signing_key

    audit_key = settings.data_dir.resolve() / "gateway-audit.pem"
    if not audit_key.exists():
        write_signing_key(audit_key)
    return audit_key


@contextlib.asynccontextmanager
async def gateway_stack(
    settings: Settings, tmp_path: Path, **extra_env: str
) -> AsyncIterator[dict[str, Any]]:
    """database-service, data-bridge and the api-gateway on loopback ports, in this process
    (the trading-engine's port has nothing behind it)."""
    from aitrading.services.api_gateway.app import create_app as gateway_app
    from aitrading.services.data_bridge.app import create_app as bridge_app
    from aitrading.services.database_service.app import create_app as database_app

    from .servers import serving

    dbs_port, gw_port, bridge_port = free_port(), free_port(), free_port()
    env = env_for(settings, tmp_path, dbs_port, bridge_port)
    env["AITRADING_SERVICES_API_GATEWAY_PORT"] = str(gw_port)
    env["AITRADING_SERVICES_TRADING_ENGINE_PORT"] = str(free_port())  # nothing listens there
    env["AITRADING_SECURITY_LOGIN_ATTEMPTS_PER_MINUTE"] = "10000"  # many logins from one IP
    audit_key = session_audit_key(settings)
    env["AITRADING_SECURITY_AUDIT_SIGNING_KEY_FILE"] = str(audit_key)
    env["AITRADING_SECURITY_AUDIT_CHECKPOINT_INTERVAL_S"] = "0.2"
    config = load_settings(environ={**env, **extra_env}).settings
    async with (
        serving(database_app(config, CollectorRegistry()), dbs_port),
        serving(bridge_app(config, CollectorRegistry()), bridge_port),
        serving(gateway_app(config, CollectorRegistry()), gw_port),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw_port}", timeout=20) as http,
    ):
        yield {
            "http": http,
            "settings": config,
            "dbs": f"http://127.0.0.1:{dbs_port}",
            "ws": f"ws://127.0.0.1:{gw_port}",
            "bridge_ws": f"ws://127.0.0.1:{bridge_port}",
            "audit_key": audit_key,
        }


@pytest.fixture
async def gateway(
    settings: Settings, clickhouse: ClickHouseStore, key_file: Path, tmp_path: Path
) -> AsyncIterator[dict[str, Any]]:
    del clickhouse, key_file
    async with gateway_stack(settings, tmp_path) as running:
        yield running


# The order stack's fixtures (defined beside their helpers), for every integration test.
from .trading_stack import make_stack, trader  # noqa: E402, F401
