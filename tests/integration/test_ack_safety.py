""" "An ack means safe", tried with ticks storage refuses (tests/integration, real servers).

- At the edge: ticks database-service would refuse (integers beyond 64 bits, control
  characters, names outside the alphabet) are refused by data-bridge before any ack, with an
  error frame; another connection streaming at the same time is not disturbed.
- Behind the edge: a batch that reaches database-service with a tick it refuses (a spool
  written under laxer rules, or any rule the bridge could not know) is stored item by item:
  every other tick lands exactly once, the refused one becomes a dead letter with the reason
  (`aitrading ticks dead-letter list`), live and on replay.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import websockets
from prometheus_client import CollectorRegistry

from aitrading.client.metatrader_connector.bridge_client import BridgeClient
from aitrading.core.infrastructure.config_manager import Settings, load_settings
from aitrading.core.market.ticks import SourcedTick
from aitrading.core.stores.clickhouse import ClickHouseStore
from aitrading.services.data_bridge.app import create_app as bridge_app
from aitrading.services.data_bridge.sink import TickBatchBody, TickSink
from aitrading.services.data_bridge.spool import Spool
from aitrading.services.database_service.app import create_app as database_app
from aitrading.services.database_service.client import DatabaseServiceClient
from tests.support.bridge_delivery import wait_delivered

from .conftest import env_for, free_port
from .servers import serving
from .test_data_bridge import stored, symbol, tick

pytestmark = pytest.mark.integration


async def _dead_letters(dbs: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=dbs) as http:
        answer = await http.get("/api/v1/ticks/dead-letters", params={"limit": 10_000})
        assert answer.status_code == 200, answer.text
        letters: list[dict[str, Any]] = answer.json()
        return letters


def _stored_tick(source: str, sym: str, sequence: int, **changes: Any) -> SourcedTick:
    fields = {**tick(sym, sequence), "source": source, "last": 0.0, "volume": 0}
    fields.update({"volume_real": 0.0, **changes})
    return SourcedTick(**fields)


@pytest.mark.parametrize(
    ("poison", "code"),
    [
        ({"volume": 2**64 - 1}, "out_of_range"),
        ({"sequence": 2**63}, "sequence"),
        ({"symbol": "EURUSD\n"}, "symbol_format"),
        ({"symbol": "EUR\u0000USD"}, "symbol_format"),
        ({"symbol": "ÉURUSD"}, "symbol_format"),
        ({"flags": 2**32 + 2}, "unknown_flags"),
    ],
)
async def test_ticks_storage_would_refuse_are_refused_before_the_ack(
    stack: dict[str, Any], poison: dict[str, Any], code: str
) -> None:
    good_symbol, other_symbol = symbol(), symbol()
    other = BridgeClient(stack["ingest"], stack["token"])
    await other.connect()
    async with websockets.connect(stack["ingest"]) as ws:
        await ws.send(json.dumps({"type": "auth", "v": 1, "token": stack["token"]}))
        assert json.loads(await ws.recv())["type"] == "welcome"
        frame = {
            "type": "ticks",
            "seq": 1,
            "ticks": [tick(good_symbol, 1), {**tick(good_symbol, 2), **poison}],
        }
        await ws.send(json.dumps(frame))
        for i in range(50):  # the other connection streams meanwhile
            await other.send_ticks([tick(other_symbol, i)])
        answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert answer["type"] == "error", answer
        assert answer["code"] == code, answer
        assert answer["seq"] == 1
        await ws.send(json.dumps({"type": "tick", "seq": 2, "tick": tick(good_symbol, 3)}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "ack"
    assert await other.wait_acked(20), other.stats
    assert other.stats.ticks_acked == 50
    await other.close()
    await wait_delivered(stack["bridge"])
    assert [t["sequence"] for t in await stored(stack["dbs"], good_symbol)] == [3]
    assert sorted(t["sequence"] for t in await stored(stack["dbs"], other_symbol)) == list(
        range(50)
    )


async def test_a_refused_tick_in_a_live_batch_is_dead_lettered_and_the_rest_stored(
    stack: dict[str, Any], tmp_path: Path
) -> None:
    """The sink behind the edge: one batch mixing two connections' frames and a tick storage
    refuses (given straight to the sink, as a bridge with laxer rules would)."""
    sym, source = symbol(), f"live-{uuid.uuid4().hex[:6]}"
    client = DatabaseServiceClient(stack["dbs"])
    sink = TickSink(client, Spool(tmp_path / "spool"), CollectorRegistry())
    await sink.start()
    try:
        first = sink.enqueue([_stored_tick(source, sym, 1), _stored_tick(source, sym, 2)])
        poisoned = sink.enqueue([_stored_tick(source, sym, 3), _stored_tick(source, "EURUSD\n", 4)])
        last = sink.enqueue([_stored_tick(source, sym, 5)])
        assert await asyncio.wait_for(asyncio.gather(first, poisoned, last), 30) == [
            "journal",
            "journal",
            "journal",
        ]

        async def delivered() -> None:  # acked = journaled; storage follows
            while sink.delivered_ticks._value.get() < 5:  # noqa: ASYNC110 - polls a counter
                await asyncio.sleep(0.05)

        await asyncio.wait_for(delivered(), 60)
    finally:
        await sink.stop()
        await client.close()
    assert [t["sequence"] for t in await stored(stack["dbs"], sym)] == [1, 2, 3, 5]
    letters = [d for d in await _dead_letters(stack["dbs"]) if d["source"] == source]
    assert len(letters) == 1
    assert json.loads(letters[0]["payload"])["symbol"] == "EURUSD\n"
    assert "symbol" in letters[0]["reason"]
    assert sink.dead_lettered._value.get() == 1


async def test_a_spooled_batch_with_a_refused_tick_replays_item_by_item(
    settings: Settings, clickhouse: ClickHouseStore, key_file: Path, tmp_path: Path
) -> None:
    """The spool holds a batch acked under laxer rules: two connections' ticks and one tick
    storage refuses. Before, replay dropped the whole batch; now every good tick is stored
    exactly once, the bad one is a dead letter, and the spool drains."""
    del clickhouse, key_file
    dbs_port, bridge_port = free_port(), free_port()
    config = load_settings(environ=env_for(settings, tmp_path, dbs_port, bridge_port)).settings
    sym, a, b = symbol(), f"a-{uuid.uuid4().hex[:6]}", f"b-{uuid.uuid4().hex[:6]}"
    batch = [_stored_tick(a, sym, i) for i in range(10)]
    batch.insert(5, _stored_tick(b, sym, 2**63 + 7))  # UInt64 fits, rules refuse
    batch += [_stored_tick(b, sym, i) for i in range(10)]
    spool = Spool(tmp_path / "data-bridge" / "spool")
    spool.append(msgspec.json.encode(TickBatchBody(batch)))
    spool.append(msgspec.json.encode(TickBatchBody([_stored_tick(a, sym, 10)])))
    spool.close()
    async with (
        serving(database_app(config, CollectorRegistry()), dbs_port),
        serving(bridge_app(config, CollectorRegistry()), bridge_port),
    ):
        dbs = f"http://127.0.0.1:{dbs_port}"
        for _ in range(300):
            if len(await stored(dbs, sym)) >= 21 and await _letters_of(dbs, b):
                break
            await asyncio.sleep(0.1)
        got = await stored(dbs, sym)
        assert sorted((t["source"], t["sequence"]) for t in got) == sorted(
            [(a, i) for i in range(11)] + [(b, i) for i in range(10)]
        )
        letters = await _letters_of(dbs, b)
        assert len(letters) == 1
        assert json.loads(letters[0]["payload"])["sequence"] == 2**63 + 7
        # The CLI shows it.
        env = {
            "AITRADING_SERVICES_DATABASE_SERVICE_URL": dbs,
            "AITRADING_DATA_DIR": str(tmp_path),
            "PATH": "/usr/bin:/bin",
        }
        listed = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "aitrading", "ticks", "dead-letter", "list", "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert listed.returncode == 0, listed.stderr
        assert any(d["source"] == b for d in json.loads(listed.stdout))
    assert Spool(tmp_path / "data-bridge" / "spool").backlog_bytes() == 0


async def _letters_of(dbs: str, source: str) -> list[dict[str, Any]]:
    return [d for d in await _dead_letters(dbs) if d["source"] == source]
