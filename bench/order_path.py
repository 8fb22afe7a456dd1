"""The order path: pre-trade risk in-process, and submit → ACCEPTED through the gateway.

1. The rules (`risk_rules.check`) over a prepared context, in this process: p50/p99.
2. database-service, data-bridge, trading-engine and api-gateway as their own processes on
   the embedded stores, a connector in this process answering every instruction with
   `accepted`: the time from `POST /api/v1/orders` at the gateway until the connector's
   report is acked (the engine has stored ACCEPTED), one order at a time. Baseline in the same
   run: the gateway's plain proxied GET (`/api/v1/market/ticks`, an empty range).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _harness import embedded, free_port, report, service_env, serving

RULE_RUNS = 20_000
ORDERS = 200
PASSWORD = "benchmark password 1"  # noqa: S105 - a throwaway user, temporary database


def percentiles(samples: list[float]) -> tuple[float, float]:
    return statistics.median(samples), statistics.quantiles(samples, n=100)[98]


def rule_latencies() -> list[float]:
    from aitrading.core.infrastructure.config_manager import TradingEngineSettings
    from aitrading.core.security.subscription_validator import Entitlements
    from aitrading.services.trading_engine.order_model import OrderRequest
    from aitrading.services.trading_engine.risk_rules import (
        AccountSnapshot,
        LatestPrice,
        RiskContext,
        TradingState,
        check,
    )

    limits = TradingEngineSettings()
    now = int(time.time() * 1000)
    request = OrderRequest.model_validate(
        {
            "client_order_id": "b1",
            "symbol": "EURUSD",
            "side": "buy",
            "type": "limit",
            "price": 1.08,
            "volume": 1.0,
        }
    )
    ctx = RiskContext(
        order=request,
        entitlements=Entitlements(symbols=("EUR*", "GBP*"), max_streams=1),
        spec=limits.spec("EURUSD"),
        price=LatestPrice(1.0849, 1.0851, now),
        account=AccountSnapshot(100_000.0, 100, "USD", now),
        position=2.0,
        account_volume=5.0,
        open_orders=3,
        orders_last_minute=4,
        duplicate_of=None,
        state=TradingState.ACTIVE,
        now_ms=now,
    )
    samples = []
    for i in range(RULE_RUNS):
        one = dataclasses.replace(ctx, open_orders=i % 10)
        started = time.perf_counter()
        assert check(one, limits) is None
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def order_path() -> tuple[list[float], list[float]]:
    from aitrading.client.metatrader_connector.bridge_client import BridgeClient, now_msc
    from aitrading.core.infrastructure.config_manager import load_settings
    from aitrading.core.market.order_instructions import verify_instruction
    from aitrading.core.security.keys import load_key_ring
    from aitrading.core.security.subscription_validator import (
        DEFAULT_PLANS,
        SubscriptionValidator,
    )
    from aitrading.core.security.users import UserStore
    from aitrading.core.stores.postgres import PostgresStore
    from aitrading.core.stores.redis_store import RedisStore

    with embedded(postgres=True, redis=True) as settings:
        ports = {
            "database-service": free_port(),
            "data-bridge": free_port(),
            "trading-engine": free_port(),
            "api-gateway": free_port(),
        }
        env = service_env(
            settings,
            ports,
            AITRADING_SECURITY_REQUESTS_PER_IP_PER_MINUTE="10000000",
            AITRADING_TRADING_ENGINE_ORDERS_PER_MINUTE="1000000",
            AITRADING_TRADING_ENGINE_MAX_OPEN_ORDERS="100000",
            AITRADING_TRADING_ENGINE_MAX_POSITION_VOLUME="1000000",
            AITRADING_TRADING_ENGINE_MAX_ACCOUNT_VOLUME="1000000",
        )
        config = load_settings(
            environ={k: v for k, v in env.items() if k.startswith("AITRADING_")}
        ).settings
        gw = f"http://127.0.0.1:{ports['api-gateway']}"
        async with serving(env, ports):
            postgres = await PostgresStore.create(config)
            redis = RedisStore.create(config)
            validator = SubscriptionValidator(postgres.pool, redis.client)
            for plan in DEFAULT_PLANS.values():
                await validator.upsert_plan(plan)
            users = UserStore(postgres.pool)
            email = f"bench-{uuid.uuid4().hex[:6]}@example.com"
            user = await users.create(email, PASSWORD)
            await validator.set_subscription(
                {
                    "user_id": user.id,
                    "plan_id": "enterprise",
                    "status": "active",
                    "current_period_end": dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
                }
            )
            key = await users.create_api_key(user.id, "bench terminal", scopes=("ingest",))
            await postgres.close()
            await redis.close()
            async with httpx.AsyncClient(base_url=gw, timeout=30) as http:
                login = await http.post("/auth/token", json={"email": email, "password": PASSWORD})
                auth = {"authorization": f"Bearer {login.json()['access_token']}"}
                minted = await http.post("/auth/connector-token", headers={"x-api-key": key})
                return await _measure(
                    http,
                    auth,
                    minted.json()["access_token"],
                    f"ws://127.0.0.1:{ports['data-bridge']}/api/v1/ingest",
                    config,
                    BridgeClient,
                    now_msc,
                    verify_instruction,
                    load_key_ring(config).public_key,
                )


async def _measure(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    connector_token: str,
    ingest: str,
    config: Any,
    bridge_client: Any,
    now_msc: Any,
    verify: Any,
    public_key: Any,
) -> tuple[list[float], list[float]]:
    acked_at: dict[int, float] = {}
    report_seq: dict[str, int] = {}
    holder: dict[str, Any] = {}

    async def on_order(token: str) -> None:
        claims = verify(token, public_key, config.security.jwt_issuer, holder["source"])
        order = claims["order"]
        seq = await holder["client"].send_report(
            {"order_id": order["id"], "status": "accepted", "retcode": 10008, "ticket": 1}
        )
        report_seq[order["id"]] = seq

    client = bridge_client(
        ingest,
        connector_token,
        "bench",
        on_order=on_order,
        on_ack=lambda ack: acked_at.__setitem__(ack["seq"], time.perf_counter()),
    )
    await client.connect()
    holder.update(client=client, source=client.welcome["source"])
    now = now_msc()
    await client.send_ticks(
        [
            {
                "symbol": "EURUSD",
                "time_msc": now,
                "bid": 1.0849,
                "ask": 1.0851,
                "sequence": 1,
                "flags": 6,
            }
        ]
    )
    await client.send_account(
        {
            "login": 1,
            "time_msc": now,
            "currency": "USD",
            "leverage": 100,
            "balance": 1e9,
            "equity": 1e9,
            "margin": 0.0,
            "margin_free": 1e9,
            "margin_level": 0.0,
            "profit": 0.0,
        }
    )
    assert await client.wait_acked(30), client.stats
    params = {"symbol": "EURUSD", "start": 0, "end": 1}
    baseline, path = [], []
    try:
        for i in range(ORDERS + 20):  # the first 20 warm up
            started = time.perf_counter()
            (await http.get("/api/v1/market/ticks", params=params, headers=auth)).raise_for_status()
            if i >= 20:
                baseline.append((time.perf_counter() - started) * 1000)
            body = {
                "client_order_id": f"b-{i}",
                "account": "bench",
                "symbol": "EURUSD",
                "side": "buy",
                "type": "limit",
                "price": round(1.07 + i * 1e-5, 5),
                "volume": 0.1,
            }
            started = time.perf_counter()
            placed = await http.post("/api/v1/orders", json=body, headers=auth)
            order = placed.json()
            assert order["status"] == "submitted", order
            deadline = time.monotonic() + 30
            while not (order["id"] in report_seq and report_seq[order["id"]] in acked_at):
                assert time.monotonic() < deadline, f"order {order['id']} never accepted"
                await asyncio.sleep(0.0002)
            if i >= 20:
                path.append((acked_at[report_seq[order["id"]]] - started) * 1000)
    finally:
        await client.close()
    return baseline, path


async def main() -> None:
    rules_p50, rules_p99 = percentiles(rule_latencies())
    baseline, path = await order_path()
    base_p50, base_p99 = percentiles(baseline)
    path_p50, path_p99 = percentiles(path)
    report(
        "order_path",
        "submit → ACCEPTED stored, through the gateway, p99 (one order at a time)",
        path_p99,
        "ms",
        base_p99,
        "p99 of the gateway's plain proxied GET (/api/v1/market/ticks, empty range)",
        submit_to_accepted_p50_ms=round(path_p50, 3),
        gateway_get_p50_ms=round(base_p50, 3),
        pretrade_check_p50_ms=round(rules_p50, 4),
        pretrade_check_p99_ms=round(rules_p99, 4),
        goal_pretrade_check_p99_ms=1.0,
        orders=ORDERS,
    )


if __name__ == "__main__":
    asyncio.run(main())
