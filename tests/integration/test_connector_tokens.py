"""A connector outlives its token: links that reconnect after the token expired get in with
a fresh one minted from the API key at the real gateway; a connector holding the one token
it started with is refused by the real bridge. Closing every link at once is also what found
the dispatcher's livelock (test_a_dead_socket_under_a_connected_link_never_starves_the_loop)."""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any

import jwt
import pytest

from aitrading.client.metatrader_connector.connector import Connector
from aitrading.client.metatrader_connector.platform_tokens import ConnectorTokens
from aitrading.client.metatrader_connector.simulated_connector import (
    run_market,
    simulated_connector,
)
from aitrading.core.security.jwt_manager import JWTManager
from tests.support.mt5_sim_process import start_mt5_sim

from .trading_stack import StackFactory, connector_token, wait_for

pytestmark = pytest.mark.integration
LEEWAY_S = inspect.signature(JWTManager).parameters["leeway_s"].default


async def _reconnect_all(connector: Connector) -> None:
    for link in connector.links:
        if link.ws is not None:
            await link.ws.close()


@pytest.mark.timeout(240)
async def test_links_reconnecting_after_expiry_get_a_fresh_token(
    make_stack: StackFactory, trader: dict[str, Any]
) -> None:
    stack = await make_stack(start_engine=False, AITRADING_SECURITY_ACCESS_TOKEN_TTL_S="30")
    key = trader["connector_key"]
    tokens = ConnectorTokens(str(stack.http.base_url), key)
    fixed = await connector_token(stack, key)

    async def the_fixed_token() -> str:
        return fixed

    renewing, market_a = simulated_connector(
        stack.settings, stack.ingest, tokens, "renewing", trade=False, connections=2
    )
    holding, market_b = simulated_connector(
        stack.settings, stack.ingest, the_fixed_token, "holding", trade=False, connections=2
    )
    markets = [asyncio.create_task(run_market(m)) for m in (market_a, market_b)]
    await renewing.start()
    await holding.start()
    try:

        async def streaming(connector: Connector) -> bool | None:
            return connector.stats.ticks_acked > 0 or None

        await wait_for(lambda: streaming(renewing), "the renewing connector streaming", 60)
        await wait_for(lambda: streaming(holding), "the holding connector streaming", 60)
        expires = jwt.decode(fixed, options={"verify_signature": False})["exp"]
        # both tokens are stale, past the verifier's allowance for clock skew too
        await asyncio.sleep(max(0.0, expires + LEEWAY_S + 1 - time.time()))
        before = renewing.stats.ticks_acked
        await _reconnect_all(renewing)
        await _reconnect_all(holding)

        async def refused() -> bool | None:
            errors = [link.last_error or "" for link in holding.links]
            up = [link.state.value for link in holding.links if link.state.value == "connected"]
            return (not up and all("token rejected" in e for e in errors)) or None

        try:
            await wait_for(refused, "the holding connector refused at the bridge", 60)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {holding.status()['links']}") from None

        async def back() -> bool | None:
            states = {link.state.value for link in renewing.links}
            return (states == {"connected"} and renewing.stats.ticks_acked > before) or None

        await wait_for(back, "the renewing connector back and streaming", 60)
        assert tokens.minted >= 2, tokens.minted
    finally:
        for task in markets:
            task.cancel()
        await renewing.stop()
        await holding.stop()


async def _mt5_sim(stack: Any, api_key: str, *args: str) -> tuple[int, str]:
    proc = await start_mt5_sim(
        stack.settings,
        stack.ingest,
        *("--gateway-url", str(stack.http.base_url), "--no-trade", *args),
        env={"AITRADING_MT5_API_KEY": api_key},
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return int(proc.returncode or 0), out.decode()


@pytest.mark.timeout(240)
async def test_mt5_sim_streams_on_an_api_key_and_says_why_a_bad_one_fails(
    make_stack: StackFactory, trader: dict[str, Any]
) -> None:
    stack = await make_stack(start_engine=False)
    code, out = await _mt5_sim(stack, trader["connector_key"], "--duration", "6")
    assert code == 0, out
    acked = int(out.strip().splitlines()[-1].split()[1])
    assert acked > 0, out
    wrong = "ak_" + "x" * 40
    code, out = await _mt5_sim(stack, wrong, "--duration", "6")
    assert code == 1, out
    assert "the gateway refused a connector token (401 unauthorized" in out, out
    assert wrong not in out
