"""`aitrading ticks watch`'s client against a real data-bridge stream: ticks of the entitled
symbols arrive; a bad token and a plan without the symbol are refused with the reason."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from typing import Any

import pytest

from aitrading.cli.mt5_sim_cmd import development_token
from aitrading.client.metatrader_connector.bridge_client import BridgeClient
from aitrading.client.stream_watcher import StreamStoppedError, watch_ticks
from aitrading.core.security.scopes import TokenScope
from aitrading.core.security.subscription_validator import DEFAULT_PLANS, SubscriptionValidator
from aitrading.core.stores.postgres import PostgresStore
from aitrading.core.stores.redis_store import RedisStore

pytestmark = pytest.mark.integration


async def viewer_token(stack: dict[str, Any], postgres: PostgresStore, redis: RedisStore) -> str:
    validator = SubscriptionValidator(postgres.pool, redis.client)
    for plan in DEFAULT_PLANS.values():
        await validator.upsert_plan(plan)
    user = f"watcher-{uuid.uuid4().hex[:6]}"
    await validator.set_subscription(
        {
            "user_id": user,
            "plan_id": "pro",
            "status": "active",
            "current_period_end": dt.datetime.now(dt.UTC) + dt.timedelta(days=30),
        }
    )
    return await development_token(stack["settings"], user, scopes=(TokenScope.READ,))


async def test_watch_yields_the_ticks_published_for_the_symbol(
    stack: dict[str, Any], postgres: PostgresStore, redis_store: RedisStore
) -> None:
    token = await viewer_token(stack, postgres, redis_store)
    base = stack["bridge"]
    connector = BridgeClient(stack["ingest"], stack["token"])
    await connector.connect()

    async def publish() -> None:
        sequence = int(time.time() * 1000)
        while True:  # until the watcher has what it waits for (it subscribes first)
            sequence += 1
            tick = {"symbol": "XAUUSD", "time_msc": sequence, "sequence": sequence}
            await connector.send_ticks([{**tick, "bid": 2350.0, "ask": 2350.4, "flags": 6}])
            await asyncio.sleep(0.05)

    async def first_three() -> list[dict[str, Any]]:
        seen = []
        async for tick in watch_ticks(base, token, ["XAUUSD"]):
            seen.append(tick)
            if len(seen) == 3:
                return seen
        return seen

    publisher = asyncio.create_task(publish())
    try:
        ticks = await asyncio.wait_for(first_three(), 60)
    finally:
        publisher.cancel()
        await connector.close()
    assert [t["symbol"] for t in ticks] == ["XAUUSD"] * 3
    assert all(t["bid"] == 2350.0 and t["ask"] == 2350.4 for t in ticks)


async def test_watch_refuses_a_bad_token_and_unentitled_symbols(
    stack: dict[str, Any], postgres: PostgresStore, redis_store: RedisStore
) -> None:
    async def first(token: str, symbols: list[str]) -> None:
        async for _ in watch_ticks(stack["bridge"], token, symbols):
            return

    with pytest.raises(StreamStoppedError, match="unauthenticated"):
        await asyncio.wait_for(first("not-a-token", ["EURUSD"]), 30)
    token = await viewer_token(stack, postgres, redis_store)
    with pytest.raises(StreamStoppedError, match=r"no symbol allowed by your plan \(NOT A SYM\)"):
        await asyncio.wait_for(first(token, ["NOT A SYM"]), 30)
