"""The connector against a real data-bridge and database-service: nothing the terminal
produced is lost or stored twice — across a bridge outage and a kill -9 of the connector."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from aitrading.client.metatrader_connector.connector import Connector, ConnectorOptions
from aitrading.client.metatrader_connector.outbox import Outbox
from aitrading.core.infrastructure.circuit_breaker import BreakerState
from aitrading.core.infrastructure.config_manager import Settings, load_settings
from tests.support.file_terminal import FileTerminal, append_ticks
from tests.support.stored_ticks import stored_ticks

from .conftest import env_for, free_port
from .servers import serving

pytestmark = pytest.mark.integration
REPO = Path(__file__).parents[2]


async def stored_bids(dbs: str, symbol: str) -> Counter[float]:
    return Counter(t["bid"] for t in await stored_ticks(dbs, symbol))


async def wait_stored(
    dbs: str, symbol: str, expected: list[float], within_s: float = 90
) -> Counter[float]:
    deadline = time.monotonic() + within_s
    while True:
        found = await stored_bids(dbs, symbol)
        if sum(found.values()) >= len(expected) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.3)


async def test_bridge_outage_the_outbox_grows_then_drains(
    stack: dict[str, Any], settings: Settings, tmp_path: Path
) -> None:
    """The connector starts while its bridge is away: capture goes on into the outbox, the
    links back off with their breakers open; the bridge comes, the outbox drains, every
    tick is stored once."""
    from aitrading.services.data_bridge.app import create_app as bridge_app

    symbol = f"C{uuid.uuid4().hex[:6].upper()}"
    ticks = tmp_path / "ticks.jsonl"
    now = int(time.time() * 1000)
    expected = append_ticks(ticks, symbol, 0, 600, now)
    port = free_port()

    async def token() -> str:
        return str(stack["token"])

    connector = Connector(
        ConnectorOptions(
            url=f"ws://127.0.0.1:{port}/api/v1/ingest",
            symbols=(symbol,),
            page=100,
            backoff_initial_s=0.05,
            backoff_cap_s=0.5,
            breaker_threshold=2,
            breaker_cooldown_s=0.5,
        ),
        FileTerminal(ticks),
        Outbox(tmp_path / "outbox.db"),
        token,
    )
    await connector.start()
    try:
        deadline = time.monotonic() + 60
        while connector.outbox.depth() < 6 or BreakerState.OPEN not in connector.breaker_states:
            assert time.monotonic() < deadline, connector.status()
            await asyncio.sleep(0.1)
        assert connector.stats.frames_acked == 0
        env = env_for(settings, tmp_path / "bridge", int(stack["dbs"].rsplit(":", 1)[1]), port)
        bridge = bridge_app(load_settings(environ=env).settings, CollectorRegistry())
        async with serving(bridge, port):
            found = await wait_stored(stack["dbs"], symbol, expected)
            deadline = time.monotonic() + 30
            # every tick frame drains; account/positions frames wait for a trading-engine,
            # which this stack does not run (`unavailable`: kept and resent, as they should)
            while any(f.kind == "ticks" for f in connector.outbox.pending()):
                assert time.monotonic() < deadline, connector.status()
                await asyncio.sleep(0.1)
            left = {f.kind for f in connector.outbox.pending()}
            assert left <= {"positions", "account_info"}, left
    finally:
        await connector.stop()
    assert found == Counter(expected), "every tick stored exactly once"
    assert {link["state"] for link in connector.status()["links"]} == {"disconnected"}


async def test_kill_9_mid_stream_then_restart_stores_every_tick_once(
    stack: dict[str, Any], tmp_path: Path
) -> None:
    symbol = f"K{uuid.uuid4().hex[:6].upper()}"
    ticks, outbox = tmp_path / "ticks.jsonl", tmp_path / "outbox.db"
    now = int(time.time() * 1000)
    expected = append_ticks(ticks, symbol, 0, 3000, now)
    args = [
        sys.executable,
        "-m",
        "tests.support.connector_process",
        stack["ingest"],
        stack["token"],
        str(ticks),
        str(outbox),
        symbol,
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = await asyncio.create_subprocess_exec(*args, cwd=REPO, env=env)
    try:
        deadline = time.monotonic() + 60
        while sum((await stored_bids(stack["dbs"], symbol)).values()) < 300:
            assert first.returncode is None, "the connector died on its own"
            assert time.monotonic() < deadline, "nothing stored"
            await asyncio.sleep(0.05)
    finally:
        first.send_signal(signal.SIGKILL)  # mid-stream: no cleanup, no goodbye
        await asyncio.wait_for(first.wait(), 30)
    expected += append_ticks(ticks, symbol, 3000, 500, now)  # the terminal went on meanwhile
    second = await asyncio.create_subprocess_exec(*args, cwd=REPO, env=env)
    try:
        found = await wait_stored(stack["dbs"], symbol, expected)
        await asyncio.sleep(1.0)  # anything resent late would show up as a second copy
        found = await stored_bids(stack["dbs"], symbol)
    finally:
        second.send_signal(signal.SIGKILL)
        await asyncio.wait_for(second.wait(), 30)
    missing = set(expected) - set(found)
    twice = [bid for bid, n in found.items() if n > 1]
    assert not missing, f"{len(missing)} ticks never stored"
    assert not twice, f"{len(twice)} ticks stored twice"
    assert sum(found.values()) == len(expected)
