"""Zero trust between services: database-service takes writes only from known services.

With service identity required (the production default), a write without a service token,
with a user's token, with a token for another service, from an unknown service, or signed by
another key is refused with 401; data-bridge, which presents its own identity, still stores
the ticks a connector sends; reads need no service token.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from aitrading.cli.mt5_sim_cmd import development_token
from aitrading.client.metatrader_connector.bridge_client import BridgeClient
from aitrading.core.infrastructure.config_manager import Settings, load_settings
from aitrading.core.security.jwt_manager import KeyRing, SigningKey
from aitrading.core.security.keys import load_key_ring
from aitrading.core.security.service_identity import HEADER, ServiceIdentity
from aitrading.core.stores.clickhouse import ClickHouseStore
from aitrading.services.data_bridge.app import create_app as bridge_app
from aitrading.services.data_bridge.spool import Spool
from aitrading.services.database_service.app import create_app as database_app
from aitrading.services.database_service.client import DatabaseServiceClient

from .conftest import env_for, free_port
from .servers import serving

pytestmark = pytest.mark.integration


def _batch(symbol: str, sequence: int) -> dict[str, object]:
    tick = {
        "source": "identity-test",
        "symbol": symbol,
        "time_msc": int(time.time() * 1000),
        "sequence": sequence,
        "bid": 1.1,
        "ask": 1.2,
    }
    return {"ticks": [tick]}


async def test_writes_need_the_identity_of_a_known_service(
    settings: Settings, clickhouse: ClickHouseStore, key_file: Path, tmp_path: Path
) -> None:
    del clickhouse, key_file
    dbs_port, bridge_port = free_port(), free_port()
    env = env_for(settings, tmp_path, dbs_port, bridge_port)
    env["AITRADING_SERVICES_REQUIRE_SERVICE_IDENTITY"] = "true"
    config = load_settings(environ=env).settings
    keys = load_key_ring(config)
    issuer = config.security.jwt_issuer
    symbol = f"S{uuid.uuid4().hex[:7].upper()}"
    async with (
        serving(database_app(config, CollectorRegistry()), dbs_port),
        serving(bridge_app(config, CollectorRegistry()), bridge_port),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{dbs_port}", timeout=20) as http,
    ):
        user_token = await development_token(config, "someone")
        other_key = KeyRing(SigningKey.generate())
        attempts = {
            "no token": {},
            "a user's token": {HEADER: user_token},
            "for another service": ServiceIdentity(keys, issuer, "data-bridge").headers_for(
                "trading-engine"
            ),
            "an unknown service": ServiceIdentity(keys, issuer, "mallory").headers_for(
                "database-service"
            ),
            "another key": ServiceIdentity(other_key, issuer, "data-bridge").headers_for(
                "database-service"
            ),
            "garbage": {HEADER: "not.a.token"},
        }
        for why, headers in attempts.items():
            answer = await http.post("/api/v1/ticks/batch", json=_batch(symbol, 1), headers=headers)
            assert answer.status_code == 401, (why, answer.text)
            assert answer.json()["error"]["code"] == "service_identity_required", why
        legit = ServiceIdentity(keys, issuer, "data-bridge").headers_for("database-service")
        answer = await http.post("/api/v1/ticks/batch", json=_batch(symbol, 2), headers=legit)
        assert answer.status_code == 200, answer.text

        # data-bridge presents its own identity: a connector's ticks are stored.
        connector = BridgeClient(
            f"ws://127.0.0.1:{bridge_port}/api/v1/ingest",
            await development_token(config, "identity-connector"),
        )
        await connector.connect()
        now = int(time.time() * 1000)
        await connector.send_ticks(
            [{"symbol": symbol, "time_msc": now, "bid": 1.1, "ask": 1.2, "sequence": 3}]
        )
        assert await connector.wait_acked(20), connector.stats
        await connector.close()

        # A bridge whose identity is wrong (a key rotated on one side only): its ticks are
        # spooled and wait — they are not dead-lettered as if the data were bad.
        wrong = DatabaseServiceClient(
            f"http://127.0.0.1:{dbs_port}",
            identity=ServiceIdentity(other_key, issuer, "data-bridge"),
        )
        spool_env = {**env, "AITRADING_DATA_DIR": str(tmp_path / "misconfigured")}
        misconfigured = load_settings(environ=spool_env).settings
        other_port = free_port()
        async with serving(bridge_app(misconfigured, CollectorRegistry(), wrong), other_port):
            client = BridgeClient(
                f"ws://127.0.0.1:{other_port}/api/v1/ingest",
                await development_token(config, "identity-misconfigured"),
            )
            await client.connect()
            await client.send_ticks(
                [{"symbol": symbol, "time_msc": now, "bid": 1.1, "ask": 1.2, "sequence": 4}]
            )
            assert await client.wait_acked(20), client.stats
            await client.close()
        assert Spool(tmp_path / "misconfigured" / "data-bridge" / "spool").backlog_bytes() > 0

        # Reads need no service token.
        stored = await http.get(
            "/api/v1/ticks", params={"symbol": symbol, "start": 0, "end": 4_000_000_000_000}
        )
        assert stored.status_code == 200
        assert sorted(t["sequence"] for t in stored.json()["ticks"]) == [2, 3]
