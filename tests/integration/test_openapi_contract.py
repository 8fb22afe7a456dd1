"""Each service keeps the promises of its OpenAPI document (schemathesis, bounded examples).

For every operation schemathesis generates valid and invalid requests from the document and
checks the answers: never a 5xx, never a status or content type the document does not list,
bodies that match their schemas, an `Allow` header that lists the path's methods. Examples
per operation are bounded (CI time) and the seed is fixed, so a failure reproduces.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from aitrading.cli.mt5_sim_cmd import development_token
from aitrading.core.infrastructure.config_manager import Settings, load_settings
from aitrading.core.security.scopes import TokenScope
from aitrading.core.stores.clickhouse import ClickHouseStore
from aitrading.services.database_service.app import create_app as database_app

from .conftest import WEAVIATE_BIN, env_for, free_port
from .servers import serving

pytestmark = pytest.mark.integration

EXAMPLES = "15"


async def schemathesis(base: str, *extra: str) -> tuple[int, str]:
    args = [
        "-m",
        "schemathesis.cli",
        "run",
        f"{base}/openapi.json",
        "--checks",
        "all",
        # Rules OpenAPI cannot express (end > start, a fingerprint that hashes its signature,
        # text a database can store) make some schema-valid requests a precise 422 — which
        # is right, so "every schema-valid request is accepted" is not checked.
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        EXAMPLES,
        "--seed",
        "20261125",
        "--request-timeout",
        "30",
        "--no-color",
        *extra,
    ]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 900)
    return int(proc.returncode or 0), out.decode(errors="replace")


async def test_database_service_keeps_its_contract(
    settings: Settings,
    clickhouse: ClickHouseStore,
    key_file: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    del clickhouse, key_file
    port = free_port()
    env = env_for(settings, tmp_path, port, free_port())
    extra: list[str] = []
    if WEAVIATE_BIN.is_file():  # similarity search answers for real
        env.update(request.getfixturevalue("weaviate_env"))
    else:  # without Weaviate that one operation is a documented-but-5xx 503
        print(f"no weaviate-server at {WEAVIATE_BIN}: similarity search not exercised")
        extra += ["--exclude-path-regex", "/similar$"]
    config = load_settings(environ=env).settings
    async with serving(database_app(config, CollectorRegistry()), port):
        code, out = await schemathesis(f"http://127.0.0.1:{port}", *extra)
    assert code == 0, out[-12000:]


async def test_api_gateway_keeps_its_contract(gateway: dict[str, Any]) -> None:
    token = await development_token(gateway["settings"], "contract", scopes=(TokenScope.READ,))
    base = str(gateway["http"].base_url).rstrip("/")
    code, out = await schemathesis(base, "--header", f"Authorization: Bearer {token}")
    assert code == 0, out[-12000:]


async def test_data_bridge_keeps_its_contract(gateway: dict[str, Any]) -> None:
    base = gateway["bridge_ws"].replace("ws://", "http://")
    code, out = await schemathesis(base)
    assert code == 0, out[-12000:]


async def test_trading_engine_keeps_its_contract(
    settings: Settings, key_file: Path, tmp_path: Path, postgres: Any, redis_store: Any
) -> None:
    """Called as the gateway would (its service token, a real user); the internal routes
    then answer 401 (data-bridge only) and the admin routes 403 — both documented."""
    from aitrading.core.security.keys import load_key_ring
    from aitrading.core.security.service_identity import ServiceIdentity
    from aitrading.core.security.subscription_validator import (
        DEFAULT_PLANS,
        SubscriptionValidator,
    )
    from aitrading.core.security.users import UserStore
    from aitrading.services.database_service.schema.postgres import migrate
    from aitrading.services.trading_engine.app import create_app as engine_app

    del key_file
    await migrate(settings)
    validator = SubscriptionValidator(postgres.pool, redis_store.client)
    await validator.upsert_plan(DEFAULT_PLANS["pro"])
    user = await UserStore(postgres.pool).create(
        f"contract-{free_port()}@example.com", "a contract password"
    )
    port = free_port()
    env = env_for(settings, tmp_path, free_port(), free_port())
    env["AITRADING_SERVICES_TRADING_ENGINE_PORT"] = str(port)
    config = load_settings(environ=env).settings
    token = ServiceIdentity(
        load_key_ring(config), config.security.jwt_issuer, "api-gateway"
    ).token_for("trading-engine")
    async with serving(engine_app(config, CollectorRegistry()), port):
        code, out = await schemathesis(
            f"http://127.0.0.1:{port}",
            "--header",
            f"X-Aitrading-Service-Token: {token}",
            "--header",
            f"X-Aitrading-User: {user.id}",
        )
    assert code == 0, out[-12000:]
