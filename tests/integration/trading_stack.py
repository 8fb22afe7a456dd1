"""The order stack for integration tests: database-service, data-bridge, trading-engine and
api-gateway on loopback ports over the session's embedded stores, a trader with a connector
key, and the helpers the order tests share."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from aitrading.client.metatrader_connector.bridge_client import BridgeClient
from aitrading.client.metatrader_connector.simulator import Simulator
from aitrading.core.infrastructure.config_manager import Settings, load_settings
from aitrading.core.market.connector_channels import LatestAccounts
from aitrading.core.security.keys import load_key_ring
from aitrading.core.security.service_identity import ServiceIdentity
from aitrading.core.security.subscription_validator import DEFAULT_PLANS, SubscriptionValidator
from aitrading.core.security.users import UserStore
from aitrading.core.stores.clickhouse import ClickHouseStore
from aitrading.core.stores.postgres import PostgresStore
from aitrading.core.stores.redis_store import RedisStore
from tests.support.bridge_executor import SimulatedTerminal

from .conftest import env_for, free_port
from .servers import serving

PASSWORD = "correct horse battery staple"


class Stack:
    """database-service, data-bridge, trading-engine and api-gateway on loopback ports."""

    def __init__(self, settings: Settings, ports: dict[str, int]) -> None:
        self.settings = settings
        self.ports = ports
        self.http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['gw']}", timeout=20)
        self.ingest = f"ws://127.0.0.1:{ports['bridge']}/api/v1/ingest"
        self.engine_url = f"http://127.0.0.1:{ports['te']}"

    def engine_app(self) -> Any:
        from aitrading.services.trading_engine.app import create_app

        return create_app(self.settings, CollectorRegistry())

    def as_gateway(self, user: str) -> dict[str, str]:
        """Headers the api-gateway sends to the trading-engine on behalf of `user`."""
        identity = ServiceIdentity(
            load_key_ring(self.settings), self.settings.security.jwt_issuer, "api-gateway"
        )
        return {**identity.headers_for("trading-engine"), "x-aitrading-user": user}


StackFactory = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def make_stack(
    settings: Settings, clickhouse: ClickHouseStore, key_file: Path, tmp_path: Path
) -> AsyncIterator[StackFactory]:
    from aitrading.services.api_gateway.app import create_app as gateway_app
    from aitrading.services.data_bridge.app import create_app as bridge_app
    from aitrading.services.database_service.app import create_app as database_app

    del clickhouse, key_file
    exits = contextlib.AsyncExitStack()

    async def make(start_engine: bool = True, **overrides: str) -> Stack:
        ports = {name: free_port() for name in ("dbs", "bridge", "te", "gw")}
        env = env_for(settings, tmp_path / uuid.uuid4().hex[:6], ports["dbs"], ports["bridge"])
        env["AITRADING_SERVICES_TRADING_ENGINE_PORT"] = str(ports["te"])
        env["AITRADING_SERVICES_API_GATEWAY_PORT"] = str(ports["gw"])
        env["AITRADING_SECURITY_LOGIN_ATTEMPTS_PER_MINUTE"] = "10000"
        env["AITRADING_TRADING_ENGINE_SWEEP_INTERVAL_S"] = "0.2"
        env.update(overrides)
        config = load_settings(environ=env).settings
        stack = Stack(config, ports)
        await exits.enter_async_context(
            serving(database_app(config, CollectorRegistry()), ports["dbs"])
        )
        await exits.enter_async_context(
            serving(bridge_app(config, CollectorRegistry()), ports["bridge"])
        )
        if start_engine:
            await exits.enter_async_context(serving(stack.engine_app(), ports["te"]))
        await exits.enter_async_context(
            serving(gateway_app(config, CollectorRegistry()), ports["gw"])
        )
        exits.push_async_callback(stack.http.aclose)
        return stack

    async with exits:
        yield make


@pytest.fixture
async def trader(
    settings: Settings, postgres: PostgresStore, redis_store: RedisStore
) -> dict[str, Any]:
    """A pro user (orders included) with a connector API key, and an administrator."""
    from aitrading.services.database_service.schema.postgres import migrate

    await migrate(settings)
    users = UserStore(postgres.pool)
    validator = SubscriptionValidator(postgres.pool, redis_store.client)
    for plan in DEFAULT_PLANS.values():
        await validator.upsert_plan(plan)
    made: dict[str, Any] = {}
    for name, role in (("pro", "user"), ("admin", "admin")):
        email = f"{name}-{uuid.uuid4().hex[:6]}@example.com"
        user = await users.create(email, PASSWORD, role=role)
        await validator.set_subscription(
            {
                "user_id": user.id,
                "plan_id": "pro",
                "status": "active",
                "current_period_end": dt.datetime.now(dt.UTC) + dt.timedelta(days=30),
            }
        )
        made[name] = {"id": user.id, "email": email}
    made["connector_key"] = await users.create_api_key(
        made["pro"]["id"], "mt5 terminal", scopes=("ingest",)
    )
    return made


async def bearer(stack: Stack, email: str) -> dict[str, str]:
    answer = await stack.http.post("/auth/token", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return {"authorization": f"Bearer {answer.json()['access_token']}"}


async def connector_token(stack: Stack, key: str) -> str:
    answer = await stack.http.post("/auth/connector-token", headers={"x-api-key": key})
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


async def connect_terminal(
    stack: Stack, token: str, account: str, **options: Any
) -> tuple[BridgeClient, SimulatedTerminal]:
    """A simulated MT5 connector for `account`: streams a few ticks (the prices risk checks
    against) and its account snapshot, then executes instructions."""
    holder: dict[str, SimulatedTerminal] = {}

    async def on_order(instruction: str) -> None:
        await holder["terminal"].on_order(instruction)

    client = BridgeClient(stack.ingest, token, account, on_order=on_order)
    await client.connect()
    keys = load_key_ring(stack.settings)
    terminal = SimulatedTerminal(
        client,
        Simulator(seed=7),
        keys.public_key,
        stack.settings.security.jwt_issuer,
        client.welcome["source"],
        **options,
    )
    holder["terminal"] = terminal
    await client.send_ticks(
        terminal.simulator.ticks_for(2.0)
        or [terminal.simulator.tick(terminal.simulator.symbols[0])]
    )
    await terminal.send_state()
    assert await client.wait_acked(20), client.stats
    return client, terminal


async def wait_for(check: Callable[[], Awaitable[Any]], what: str, within_s: float = 30.0) -> Any:
    deadline = time.monotonic() + within_s
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: not within {within_s:g} s (last: {last!r})")


async def order_in(
    stack: Stack, headers: dict[str, str], order_id: str, *states: str
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        body: dict[str, Any] = (
            await stack.http.get(f"/api/v1/orders/{order_id}", headers=headers)
        ).json()
        return body if body.get("status") in states else None

    result: dict[str, Any] = await wait_for(check, f"order {order_id} in {states}")
    return result


async def seen_before(redis_store: RedisStore, user: str, account: str) -> None:
    """The account's connector reported its margin earlier and is offline now (the snapshot
    data-bridge keeps for the free-margin check)."""
    await LatestAccounts(redis_store.client).put(
        f"{user}:{account}",
        {"margin_free": 50_000.0, "leverage": 100, "currency": "USD", "time_msc": 0},
    )


def market(symbol: str = "EURUSD", volume: float = 0.1, **extra: Any) -> dict[str, Any]:
    return {
        "client_order_id": f"c-{uuid.uuid4().hex[:12]}",
        "symbol": symbol,
        "side": "buy",
        "type": "market",
        "volume": volume,
        **extra,
    }
