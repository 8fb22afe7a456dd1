"""The order path on the real embedded stores: gateway → trading-engine → data-bridge →
a simulated MT5 connector → execution reports → PostgreSQL, and what happens when any part
of it goes away."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from aitrading.client.metatrader_connector.bridge_client import BridgeClient
from aitrading.client.metatrader_connector.sim_terminal import SimulatedTerminal
from aitrading.client.metatrader_connector.simulator import Simulator
from aitrading.core.infrastructure.config_manager import Settings, load_settings
from aitrading.core.market.connector_channels import INSTRUCTIONS, LatestAccounts
from aitrading.core.security.keys import load_key_ring
from aitrading.core.security.service_identity import ServiceIdentity
from aitrading.core.security.subscription_validator import DEFAULT_PLANS, SubscriptionValidator
from aitrading.core.security.users import UserStore
from aitrading.core.stores.clickhouse import ClickHouseStore
from aitrading.core.stores.postgres import PostgresStore
from aitrading.core.stores.redis_store import RedisStore

from .conftest import env_for, free_port
from .servers import serving

pytestmark = pytest.mark.integration
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


async def test_an_order_through_the_gateway_is_filled_by_the_connector(
    make_stack: StackFactory, trader: dict[str, Any]
) -> None:
    stack = await make_stack()
    headers = await bearer(stack, trader["pro"]["email"])
    client, terminal = await connect_terminal(
        stack, await connector_token(stack, trader["connector_key"]), "t1"
    )
    try:
        request = market(account="t1")
        placed = await stack.http.post("/api/v1/orders", json=request, headers=headers)
        assert placed.status_code == 201, placed.text
        order = placed.json()
        assert order["status"] == "submitted", order
        again = await stack.http.post("/api/v1/orders", json=request, headers=headers)
        assert again.status_code == 200
        assert again.json()["id"] == order["id"]

        filled = await order_in(stack, headers, order["id"], "filled")
        assert filled["filled_volume"] == pytest.approx(0.1)
        assert filled["avg_fill_price"] > 0
        assert filled["ticket"] > 0
        assert filled["retcode"] == 10009
        assert [e["to"] for e in filled["events"]] == ["initialized", "submitted", "filled"]
        assert terminal.executed == {order["id"]}

        mine = (await stack.http.get("/api/v1/orders", headers=headers)).json()["orders"]
        assert [o["id"] for o in mine if o["client_order_id"] == request["client_order_id"]] == [
            order["id"]
        ]

        async def position() -> list[dict[str, Any]]:
            found = (await stack.http.get("/api/v1/positions", headers=headers)).json()
            return [p for p in found["positions"] if p["account"] == "t1"]

        held = await wait_for(position, "the connector's position served")
        assert held[0]["symbol"] == "EURUSD"
        assert held[0]["volume"] == pytest.approx(0.1)

        ready = (await stack.http.get("/health/ready")).json()
        assert ready["components"]["upstream:trading-engine"]["status"] == "healthy", ready
        assert ready["status"] == "healthy", ready  # the whole stack is up: green
        async with httpx.AsyncClient() as plain:
            metrics = (await plain.get(f"{stack.engine_url}/metrics")).text
        assert 'aitrading_trading_engine_orders_total{state="filled"}' in metrics
        assert "aitrading_trading_engine_risk_check_seconds_count" in metrics
    finally:
        await client.close()


async def test_audit_and_order_events_record_every_transition(
    make_stack: StackFactory,
    trader: dict[str, Any],
    postgres: PostgresStore,
    redis_store: RedisStore,
) -> None:
    stack = await make_stack()
    await seen_before(redis_store, trader["pro"]["id"], "ghost")
    headers = await bearer(stack, trader["pro"]["email"])
    # no connector "ghost": the order waits in SUBMITTED
    placed = (
        await stack.http.post("/api/v1/orders", json=market(account="ghost"), headers=headers)
    ).json()
    rows = await postgres.pool.fetch(
        "SELECT action FROM audit_log WHERE resource = $1 ORDER BY seq", f"orders/{placed['id']}"
    )
    assert [r["action"] for r in rows] == ["order.initialized", "order.submitted"]
    with pytest.raises(Exception, match=r"append-only|permission"):
        await postgres.pool.execute(
            "UPDATE order_events SET to_status = 'filled' WHERE order_id = $1", placed["id"]
        )


async def test_risk_denials_name_the_rule(make_stack: StackFactory, trader: dict[str, Any]) -> None:
    stack = await make_stack()
    headers = await bearer(stack, trader["pro"]["email"])
    client, _ = await connect_terminal(
        stack, await connector_token(stack, trader["connector_key"]), "t2"
    )
    try:

        async def place(body: dict[str, Any]) -> dict[str, Any]:
            answer = await stack.http.post("/api/v1/orders", json=body, headers=headers)
            assert answer.status_code == 201, answer.text
            result: dict[str, Any] = answer.json()
            return result

        odd = await place(market(account="t2", volume=0.015))
        assert (odd["status"], odd["denied_by"]) == ("denied", "lot_size")
        assert "lot step" in odd["reason"]
        far = await place(
            {**market(account="t2"), "type": "limit", "price": 9.99, "time_in_force": "gtc"}
        )
        assert (far["status"], far["denied_by"]) == ("denied", "price_band")
        big = await place(market(account="t2", volume=60))
        assert big["denied_by"] == "max_notional"
        first = await place(market(account="t2", volume=0.2))
        twin = await place({**market(account="t2", volume=0.2)})
        assert first["status"] == "submitted"
        assert (twin["status"], twin["denied_by"]) == ("denied", "duplicate_order")
        assert first["id"] in twin["reason"]
        unknown = await place(market(symbol="NOSUCH", account="t2"))
        assert unknown["denied_by"] == "price_band"  # no price has ever been seen for it
        bad = await stack.http.post(
            "/api/v1/orders", json={**market(), "volume": -1}, headers=headers
        )
        assert bad.status_code == 422
        assert bad.json()["error"]["code"]
    finally:
        await client.close()


async def test_kill_switch_in_one_process_stops_orders_in_another(
    make_stack: StackFactory, trader: dict[str, Any], redis_store: RedisStore
) -> None:
    stack = await make_stack()
    await seen_before(redis_store, trader["pro"]["id"], "t3")
    admin = await bearer(stack, trader["admin"]["email"])
    user = await bearer(stack, trader["pro"]["email"])
    refused = await stack.http.put(
        "/api/v1/risk/state",
        json={"scope": "global", "state": "halted", "reason": "x"},
        headers=user,
    )
    assert refused.status_code == 403
    second_port = free_port()
    async with (
        serving(stack.engine_app(), second_port),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{second_port}", timeout=20) as other,
    ):
        halted = await stack.http.put(
            "/api/v1/risk/state",
            json={"scope": "global", "state": "halted", "reason": "incident drill"},
            headers=admin,
        )
        assert halted.status_code == 200, halted.text
        try:
            answer = await other.post(
                "/api/v1/orders",
                json=market(account="t3"),
                headers=stack.as_gateway(trader["pro"]["id"]),
            )
            assert answer.status_code == 201, answer.text
            assert (answer.json()["status"], answer.json()["denied_by"]) == (
                "denied",
                "trading_state",
            )
        finally:
            await stack.http.put(
                "/api/v1/risk/state",
                json={"scope": "global", "state": "active", "reason": "drill over"},
                headers=admin,
            )
        state = (await stack.http.get("/api/v1/risk/state", headers=admin)).json()
        assert {"scope": "global", "state": "active"}.items() <= state["states"][0].items()
        again = await other.post(
            "/api/v1/orders",
            json=market(account="t3"),
            headers=stack.as_gateway(trader["pro"]["id"]),
        )
        assert again.json()["status"] == "submitted", again.text


async def test_the_engine_takes_callers_only_with_their_service_identity(
    make_stack: StackFactory, trader: dict[str, Any]
) -> None:
    stack = await make_stack()
    async with httpx.AsyncClient(base_url=stack.engine_url, timeout=20) as direct:
        spoofed = await direct.post(
            "/api/v1/orders", json=market(), headers={"x-aitrading-user": trader["pro"]["id"]}
        )
        assert spoofed.status_code == 401
        assert spoofed.json()["error"]["code"] == "service_identity_required"
        # the gateway's identity is not data-bridge's: it cannot fake a connector's report
        forged = await direct.post(
            "/internal/v1/execution-reports",
            json={"source": trader["pro"]["id"], "order_id": "0" * 32, "status": "filled"},
            headers=stack.as_gateway(trader["pro"]["id"]),
        )
        assert forged.status_code == 401


async def test_a_report_for_another_connectors_order_is_refused(
    make_stack: StackFactory, trader: dict[str, Any], redis_store: RedisStore
) -> None:
    stack = await make_stack()
    await seen_before(redis_store, trader["pro"]["id"], "mine")
    headers = await bearer(stack, trader["pro"]["email"])
    placed = (
        await stack.http.post("/api/v1/orders", json=market(account="mine"), headers=headers)
    ).json()
    token = await connector_token(stack, trader["connector_key"])
    intruder = BridgeClient(stack.ingest, token, "other")
    await intruder.connect()
    try:
        await intruder.send_report(
            {"order_id": placed["id"], "status": "filled", "filled_volume": 0.1, "fill_price": 1.0}
        )
        await wait_for(lambda: _true(intruder.stats.errors.get("order_refused")), "refusal")
        assert "not_your_order" in intruder.stats.last_error
    finally:
        await intruder.close()
    still = (await stack.http.get(f"/api/v1/orders/{placed['id']}", headers=headers)).json()
    assert still["status"] == "submitted"


async def _true(value: Any) -> Any:
    return value


async def test_cancel_a_resting_order(make_stack: StackFactory, trader: dict[str, Any]) -> None:
    stack = await make_stack()
    headers = await bearer(stack, trader["pro"]["email"])
    client, terminal = await connect_terminal(
        stack, await connector_token(stack, trader["connector_key"]), "t4"
    )
    try:
        model = terminal.simulator.symbols[0]
        below = round(model.mid * 0.98, model.digits)  # a buy limit 2% under: it rests
        placed = await stack.http.post(
            "/api/v1/orders",
            json={**market(account="t4"), "type": "limit", "price": below, "time_in_force": "gtc"},
            headers=headers,
        )
        order = placed.json()
        await order_in(stack, headers, order["id"], "accepted")
        canceled = await stack.http.delete(f"/api/v1/orders/{order['id']}", headers=headers)
        assert canceled.status_code == 202
        assert canceled.json()["status"] == "pending_cancel"
        done = await order_in(stack, headers, order["id"], "canceled")
        assert [e["to"] for e in done["events"]][-3:] == ["accepted", "pending_cancel", "canceled"]
        final = await stack.http.delete(f"/api/v1/orders/{order['id']}", headers=headers)
        assert final.status_code == 409
    finally:
        await client.close()


async def test_connector_dropping_mid_order_loses_nothing(
    make_stack: StackFactory, trader: dict[str, Any], redis_store: RedisStore
) -> None:
    """The connector receives the instruction and drops before answering: the order stays
    SUBMITTED; the next connection gets it again and it is executed exactly once."""
    stack = await make_stack()
    await seen_before(redis_store, trader["pro"]["id"], "t5")
    headers = await bearer(stack, trader["pro"]["email"])
    token = await connector_token(stack, trader["connector_key"])
    received: deque[str] = deque()

    async def drop(instruction: str) -> None:
        received.append(instruction)

    flaky = BridgeClient(stack.ingest, token, "t5", on_order=drop)
    await flaky.connect()
    placed = (
        await stack.http.post("/api/v1/orders", json=market(account="t5"), headers=headers)
    ).json()
    await wait_for(lambda: _true(len(received)), "the instruction delivered")
    await flaky.close()  # gone without a report
    assert (await stack.http.get(f"/api/v1/orders/{placed['id']}", headers=headers)).json()[
        "status"
    ] == "submitted"
    client, terminal = await connect_terminal(stack, token, "t5")
    try:
        filled = await order_in(stack, headers, placed["id"], "filled")
        assert filled["filled_volume"] == pytest.approx(0.1)
        assert [e["to"] for e in filled["events"]].count("filled") == 1
        assert terminal.executed == {placed["id"]}
    finally:
        await client.close()


async def test_unanswered_orders_expire_and_refuse_mode_denies(
    make_stack: StackFactory, trader: dict[str, Any], redis_store: RedisStore
) -> None:
    stack = await make_stack(
        AITRADING_TRADING_ENGINE_INSTRUCTION_TTL_S="1", AITRADING_TRADING_ENGINE_EXPIRY_GRACE_S="0"
    )
    await seen_before(redis_store, trader["pro"]["id"], "away")
    headers = await bearer(stack, trader["pro"]["email"])
    placed = (
        await stack.http.post("/api/v1/orders", json=market(account="away"), headers=headers)
    ).json()
    assert placed["status"] == "submitted"
    expired = await order_in(stack, headers, placed["id"], "expired")
    assert "no connector answered" in expired["reason"]

    refusing = await make_stack(AITRADING_TRADING_ENGINE_WHEN_NO_CONNECTOR="refuse")
    answer = await refusing.http.post(
        "/api/v1/orders",
        json=market(account="away", volume=0.2),  # not a duplicate of the expired one
        headers=await bearer(refusing, trader["pro"]["email"]),
    )
    assert (answer.json()["status"], answer.json()["denied_by"]) == ("denied", "connector_offline")


async def test_a_restarted_engine_resumes_from_postgres(
    make_stack: StackFactory, trader: dict[str, Any], redis_store: RedisStore
) -> None:
    """Orders placed while no connector is online survive an engine restart, even when the
    instruction queue itself was lost: the new engine queues them again from PostgreSQL."""
    stack = await make_stack(start_engine=False)
    await seen_before(redis_store, trader["pro"]["id"], "t6")
    headers = await bearer(stack, trader["pro"]["email"])
    user = trader["pro"]["id"]
    async with serving(stack.engine_app(), stack.ports["te"]):
        placed = (
            await stack.http.post("/api/v1/orders", json=market(account="t6"), headers=headers)
        ).json()
        assert placed["status"] == "submitted"
    await redis_store.client.delete(INSTRUCTIONS + f"{user}:t6")  # the queue is gone too
    async with serving(stack.engine_app(), stack.ports["te"]):
        client, terminal = await connect_terminal(
            stack, await connector_token(stack, trader["connector_key"]), "t6"
        )
        try:
            filled = await order_in(stack, headers, placed["id"], "filled")
            assert terminal.executed == {placed["id"]}
            assert filled["events"][-1]["actor"] == f"connector:{user}:t6"
        finally:
            await client.close()


async def test_every_transition_of_the_table_on_postgres(
    trader: dict[str, Any], postgres: PostgresStore
) -> None:
    """Each (state, target) pair through the store: legal moves are written with their event;
    illegal ones are refused and leave the row and its history untouched."""
    from aitrading.core.security.audit_logger import AuditLog
    from aitrading.services.trading_engine.order_model import (
        TRANSITIONS,
        IllegalTransitionError,
        OrderRequest,
        OrderStatus,
    )
    from aitrading.services.trading_engine.order_store import OrderStore

    store = OrderStore(postgres.pool, AuditLog(postgres.pool))
    paths: dict[OrderStatus, list[OrderStatus]] = {OrderStatus.INITIALIZED: []}
    frontier = [OrderStatus.INITIALIZED]
    while frontier:
        state = frontier.pop(0)
        for nxt in sorted(TRANSITIONS[state]):
            if nxt not in paths:
                paths[nxt] = [*paths[state], nxt]
                frontier.append(nxt)
    assert set(paths) == set(OrderStatus)
    user = trader["pro"]["id"]
    for current in OrderStatus:
        for target in OrderStatus:
            request = OrderRequest.model_validate(market())
            order, _ = await store.create(uuid.uuid4().hex, user, f"{user}:table", request)
            for step in paths[current]:
                await store.move(order.id, step, "test")
            before = await store.get(order.id)
            assert before is not None
            history = await store.events(order.id)
            if target in TRANSITIONS[current]:
                moved = await store.move(order.id, target, "test", {"case": "legal"})
                assert moved.status is target
                assert moved.version == before.version + 1
                last = (await store.events(order.id))[-1]
                assert (last["from"], last["to"], last["version"]) == (
                    current.value,
                    target.value,
                    moved.version,
                )
            else:
                with pytest.raises(IllegalTransitionError):
                    await store.move(order.id, target, "test")
                after = await store.get(order.id)
                assert after is not None
                assert (after.status, after.version) == (current, before.version)
                assert await store.events(order.id) == history


async def test_the_risk_context_comes_from_the_stores(
    trader: dict[str, Any], postgres: PostgresStore, redis_store: RedisStore
) -> None:
    """What the rules see is what PostgreSQL and the Redis-protocol store hold: the
    connector's positions plus working orders, counts, the recent twin, the trading state,
    the latest tick and account snapshot."""
    from aitrading.core.security.audit_logger import AuditLog
    from aitrading.services.trading_engine.order_model import OrderRequest, OrderStatus
    from aitrading.services.trading_engine.order_store import OrderStore
    from aitrading.services.trading_engine.risk_rules import TradingState

    user = trader["pro"]["id"]
    account = f"ctx{uuid.uuid4().hex[:6]}"
    target = f"{user}:{account}"
    store = OrderStore(postgres.pool, AuditLog(postgres.pool))
    await store.replace_positions(
        target,
        user,
        7,
        [
            {
                "ticket": 1,
                "symbol": "EURUSD",
                "type": "buy",
                "volume": 2.0,
                "price_open": 1.08,
                "price_current": 1.09,
                "profit": 10.0,
            },
            {
                "ticket": 2,
                "symbol": "GBPUSD",
                "type": "sell",
                "volume": 1.5,
                "price_open": 1.27,
                "price_current": 1.26,
                "profit": 5.0,
            },
        ],
    )

    async def place(volume: float, state: OrderStatus | None, side: str = "sell") -> str:
        request = OrderRequest.model_validate(
            {**market(volume=volume), "side": side, "account": account}
        )
        order, _ = await store.create(uuid.uuid4().hex, user, target, request)
        if state is not None:
            for step in (OrderStatus.SUBMITTED, state):
                await store.move(order.id, step, "test")
        return order.id

    await place(0.5, OrderStatus.ACCEPTED)  # working: counts against the position
    await place(0.3, OrderStatus.FILLED)  # final: already in the positions
    twin = await place(0.7, None, side="buy")  # initialized: working
    probe = OrderRequest.model_validate({**market(volume=0.7), "account": account})
    exposure = await store.exposure(target, "EURUSD", probe, "none", 60)
    assert exposure.position == pytest.approx(2.0 - 0.5 + 0.7)
    assert exposure.account_volume == pytest.approx(2.0 + 1.5 + 0.5 + 0.7)
    assert exposure.open_orders == 2
    assert exposure.orders_last_minute == 3
    assert exposure.duplicate_of == twin
    no_twin = await store.exposure(target, "EURUSD", probe, twin, 60)
    assert no_twin.duplicate_of is None  # the order itself is not its own twin

    await store.set_trading_state(f"account:{target}", TradingState.REDUCING, "test", "drill")
    assert await store.trading_state(target) == (TradingState.ACTIVE, TradingState.REDUCING)
    await store.replace_positions(target, user, 7, [])  # all closed at the terminal
    gone = await store.exposure(target, "EURUSD", probe, "none", 60)
    assert gone.position == pytest.approx(-0.5 + 0.7)
