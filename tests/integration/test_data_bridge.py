"""data-bridge against real servers: redis-server, PostgreSQL, database-service on chdb."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from prometheus_client import CollectorRegistry

from aitrading.cli.mt5_sim_cmd import development_token
from aitrading.client.metatrader_connector.bridge_client import BridgeClient
from aitrading.core.infrastructure.config_manager import Settings, load_settings
from aitrading.core.security.scopes import TokenScope
from aitrading.core.security.subscription_validator import DEFAULT_PLANS, SubscriptionValidator
from aitrading.core.stores.clickhouse import ClickHouseStore
from aitrading.core.stores.postgres import PostgresStore
from aitrading.core.stores.redis_store import RedisStore
from aitrading.services.data_bridge.app import create_app as bridge_app
from aitrading.services.database_service.app import create_app as database_app
from tests.support.bridge_delivery import wait_delivered

from .conftest import env_for, free_port
from .servers import serving

pytestmark = pytest.mark.integration


def tick(symbol: str, sequence: int, **changes: Any) -> dict[str, Any]:
    body = {
        "symbol": symbol,
        "time_msc": int(time.time() * 1000),
        "bid": 1.1,
        "ask": 1.1002,
        "sequence": sequence,
        "flags": 6,
    }
    body.update(changes)
    return body


def symbol() -> str:
    return f"B{uuid.uuid4().hex[:8].upper()}"


async def stored(dbs: str, sym: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=dbs) as http:
        answer = await http.get(
            "/api/v1/ticks", params={"symbol": sym, "start": 0, "end": 4_000_000_000_000}
        )
        ticks: list[dict[str, Any]] = answer.json()["ticks"]
        return ticks


async def test_bad_frames_get_the_right_error_and_the_connection_survives(
    stack: dict[str, Any],
) -> None:
    sym = symbol()
    async with websockets.connect(stack["ingest"]) as ws:
        await ws.send(json.dumps({"type": "auth", "v": 1, "token": stack["token"]}))
        assert json.loads(await ws.recv())["type"] == "welcome"
        cases = [
            ("{nope", "malformed", None),
            (json.dumps({"type": "teleport", "seq": 1}), "unknown_type", 1),
            (
                json.dumps({"type": "tick", "seq": 2, "tick": tick("BAD SYM", 1)}),
                "symbol_format",
                2,
            ),
            (
                json.dumps({"type": "tick", "seq": 3, "tick": tick(sym, 1, bid=1.2, ask=1.1)}),
                "ask_below_bid",
                3,
            ),
            (
                json.dumps({"type": "tick", "seq": 4, "tick": tick(sym, 1, bid=-1)}),
                "non_positive_price",
                4,
            ),
            (
                '{"type":"tick","seq":5,"tick":{"symbol":"SYM","time_msc":NOW,"bid":NaN,"ask":1,'
                '"sequence":1}}'.replace("SYM", sym).replace("NOW", str(int(time.time() * 1000))),
                "malformed",
                None,
            ),
            (
                json.dumps(
                    {
                        "type": "tick",
                        "seq": 6,
                        "tick": tick(sym, 1, time_msc=int(time.time() * 1000) - 3_600_000),
                    }
                ),
                "time_skew",
                6,
            ),
            (
                json.dumps({"type": "tick", "seq": 7, "tick": tick(sym, 1, flags=4096)}),
                "unknown_flags",
                7,
            ),
            (
                json.dumps(
                    {"type": "ticks", "seq": 8, "ticks": [tick(sym, 1), tick(sym, 2, bid=0)]}
                ),
                "non_positive_price",
                8,
            ),
            (json.dumps({"type": "auth", "v": 1, "token": "again"}), "malformed", None),
        ]
        for raw, code, seq in cases:
            await ws.send(raw)
            answer = json.loads(await ws.recv())
            assert answer["type"] == "error", (raw, answer)
            assert answer["code"] == code, (raw, answer)
            if seq is not None:
                assert answer["seq"] == seq
        await ws.send(json.dumps({"type": "tick", "seq": 9, "tick": tick(sym, 3)}))
        ack = json.loads(await ws.recv())
        assert (ack["type"], ack["seq"], ack["accepted"], ack["durable"]) == (
            "ack",
            9,
            1,
            "journal",
        )
    await wait_delivered(stack["bridge"])
    assert [t["sequence"] for t in await stored(stack["dbs"], sym)] == [3]  # nothing of the bad
    async with httpx.AsyncClient() as http:
        metrics = (await http.get(f"{stack['bridge']}/metrics")).text
    assert 'aitrading_data_bridge_rejections_total{reason="ask_below_bid"} 1.0' in metrics


async def test_unauthenticated_connectors_are_refused(stack: dict[str, Any]) -> None:
    async with websockets.connect(stack["ingest"]) as ws:
        await ws.send(json.dumps({"type": "tick", "seq": 1, "tick": tick("EURUSD", 1)}))
        answer = json.loads(await ws.recv())
        assert answer["code"] == "unauthenticated"
    async with websockets.connect(stack["ingest"]) as ws:
        await ws.send(json.dumps({"type": "auth", "v": 1, "token": stack["token"][:-4] + "AAAA"}))
        assert json.loads(await ws.recv())["code"] == "auth_failed"


async def test_a_duplicate_is_stored_once(stack: dict[str, Any]) -> None:
    sym = symbol()
    client = BridgeClient(stack["ingest"], stack["token"])
    await client.connect()
    same = tick(sym, 42)
    await client.send_ticks([same])
    await client.send_ticks([same])
    await client.send_ticks([same, tick(sym, 43)])
    assert await client.wait_acked(10)
    await client.close()
    assert client.stats.ticks_acked == 2
    assert client.stats.duplicates == 2
    await wait_delivered(stack["bridge"])
    assert [t["sequence"] for t in await stored(stack["dbs"], sym)] == [42, 43]


async def test_acks_continue_from_the_journal_while_database_service_is_down(
    settings: Settings, clickhouse: ClickHouseStore, key_file: Path, tmp_path: Path
) -> None:
    del clickhouse, key_file
    dbs_port, bridge_port = free_port(), free_port()
    config = load_settings(environ=env_for(settings, tmp_path, dbs_port, bridge_port)).settings
    sym = symbol()
    async with serving(bridge_app(config, CollectorRegistry()), bridge_port):
        token = await development_token(config, "spool-test")
        client = BridgeClient(f"ws://127.0.0.1:{bridge_port}/api/v1/ingest", token)
        await client.connect()
        for i in range(20):
            await client.send_ticks([tick(sym, i)])
        assert await client.wait_acked(10), client.stats
        assert client.stats.ticks_acked == 20
        async with httpx.AsyncClient() as http:
            for _ in range(100):  # the hub re-checks every 0.2 s
                ready = (await http.get(f"http://127.0.0.1:{bridge_port}/health/ready")).json()
                if ready["components"]["storage"]["status"] == "degraded":
                    break
                await asyncio.sleep(0.05)
        assert ready["components"]["storage"]["status"] == "degraded"
        assert "acked ticks wait in the journal" in ready["components"]["storage"]["reason"]
        async with serving(database_app(config, CollectorRegistry()), dbs_port):
            dbs = f"http://127.0.0.1:{dbs_port}"
            for _ in range(200):  # the replayer delivers on its own once the service answers
                if len(await stored(dbs, sym)) == 20:
                    break
                await asyncio.sleep(0.05)
            assert [t["sequence"] for t in await stored(dbs, sym)] == list(range(20))
            await client.send_ticks([tick(sym, 20)])
            assert await client.wait_acked(10)
        await client.close()


async def _pro_viewer(
    stack: dict[str, Any], postgres: PostgresStore, redis_store: RedisStore
) -> tuple[SubscriptionValidator, str, Any, str]:
    """A user on the pro plan until 2030 and a read token: (validator, user, period end, token)."""
    validator = SubscriptionValidator(postgres.pool, redis_store.client)
    for plan in DEFAULT_PLANS.values():
        await validator.upsert_plan(plan)
    user = f"viewer-{uuid.uuid4().hex[:6]}"
    later = __import__("datetime").datetime.now(__import__("datetime").UTC).replace(year=2030)
    await validator.set_subscription(
        {"user_id": user, "plan_id": "pro", "status": "active", "current_period_end": later}
    )
    token = await development_token(stack["settings"], user, scopes=(TokenScope.READ,))
    return validator, user, later, token


async def test_subscribers_get_entitled_symbols_and_lose_them_on_revocation(
    stack: dict[str, Any], postgres: PostgresStore, redis_store: RedisStore
) -> None:
    validator, user, later, token = await _pro_viewer(stack, postgres, redis_store)
    sym = "XAUUSD"
    async with websockets.connect(stack["stream"]) as viewer:
        await viewer.send(json.dumps({"type": "auth", "v": 1, "token": token}))
        await viewer.send(json.dumps({"type": "subscribe", "symbols": [sym, "BAD SYMBOL!"]}))
        answer = json.loads(await viewer.recv())
        assert answer == {"type": "subscribed", "symbols": [sym], "refused": ["BAD SYMBOL!"]}
        client = BridgeClient(stack["ingest"], stack["token"])
        await client.connect()
        await client.send_ticks([tick(sym, int(time.time() * 1000), bid=2350.0, ask=2350.3)])
        while True:
            message = json.loads(await asyncio.wait_for(viewer.recv(), 30))
            if message["type"] == "ticks":
                break
        assert message["ticks"][-1]["symbol"] == sym
        await validator.set_subscription(
            {"user_id": user, "plan_id": "pro", "status": "canceled", "current_period_end": later}
        )
        while True:  # pushed to the open stream (how fast: bench/, not here)
            message = json.loads(await asyncio.wait_for(viewer.recv(), 30))
            if message["type"] == "revoked":
                break
        assert message["symbols"] == [sym]
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(viewer.recv(), 5)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4403
        await client.close()


async def _viewer(stream: str, token: str, sym: str) -> Any:
    viewer = await websockets.connect(stream)
    await viewer.send(json.dumps({"type": "auth", "v": 1, "token": token}))
    await viewer.send(json.dumps({"type": "subscribe", "symbols": [sym]}))
    answer = json.loads(await asyncio.wait_for(viewer.recv(), 30))
    assert answer["symbols"] == [sym], answer
    return viewer


async def _seen_until(viewer: Any, sequence: int, seen: dict[int, int]) -> None:
    """Count every tick the viewer receives (by sequence) until `sequence` arrives."""
    while seen.get(sequence, 0) == 0:
        message = json.loads(await asyncio.wait_for(viewer.recv(), 30))
        for t in message.get("ticks", ()) if message["type"] == "ticks" else ():
            seen[t["sequence"]] = seen.get(t["sequence"], 0) + 1


async def test_two_replicas_each_deliver_every_live_tick_exactly_once(
    stack: dict[str, Any],
    postgres: PostgresStore,
    redis_store: RedisStore,
    settings: Settings,
    tmp_path: Path,
) -> None:
    """A replica hands the ticks it took to its own subscribers at once and skips its own
    batches when Redis brings them back; the other replica's subscribers get them through
    Redis. Markers sent the other way prove nothing more was on its way: Redis keeps one
    channel's order, so an echo of a batch would arrive before the marker published after it."""
    token = (await _pro_viewer(stack, postgres, redis_store))[3]
    dbs_port = int(stack["dbs"].rsplit(":", 1)[1])
    other_port = free_port()
    other = bridge_app(
        load_settings(environ=env_for(settings, tmp_path, dbs_port, other_port)).settings,
        CollectorRegistry(),
    )
    sym, base = "XAUUSD", int(time.time() * 1000)
    sent_to_a, marker_b, marker_a = [base + 1, base + 2, base + 3], base + 4, base + 5
    async with serving(other, other_port):
        viewer_a = await _viewer(stack["stream"], token, sym)
        viewer_b = await _viewer(f"ws://127.0.0.1:{other_port}/api/v1/stream", token, sym)
        to_a = BridgeClient(stack["ingest"], stack["token"])
        to_b = BridgeClient(f"ws://127.0.0.1:{other_port}/api/v1/ingest", stack["token"])
        await to_a.connect()
        await to_b.connect()
        seen_a: dict[int, int] = {}
        seen_b: dict[int, int] = {}
        for sequence in sent_to_a:
            await to_a.send_ticks([tick(sym, sequence, bid=2350.0, ask=2350.3)])
        await _seen_until(viewer_a, sent_to_a[-1], seen_a)  # A's own, without Redis
        await _seen_until(viewer_b, sent_to_a[-1], seen_b)  # through Redis: A published
        await to_b.send_ticks([tick(sym, marker_b, bid=2350.0, ask=2350.3)])
        await _seen_until(viewer_a, marker_b, seen_a)  # after any echo of A's batches
        await to_a.send_ticks([tick(sym, marker_a, bid=2350.0, ask=2350.3)])
        await _seen_until(viewer_b, marker_a, seen_b)  # after any echo of B's marker
        for client in (to_a, to_b):
            await client.close()
        for viewer in (viewer_a, viewer_b):
            await viewer.close()
    ours = [*sent_to_a, marker_b]
    assert {s: seen_a.get(s, 0) for s in ours} == dict.fromkeys(ours, 1)
    assert {s: seen_b.get(s, 0) for s in ours} == dict.fromkeys(ours, 1)


async def test_kill_9_after_acks_loses_nothing_and_stores_each_tick_once(
    settings: Settings, clickhouse: ClickHouseStore, key_file: Path, tmp_path: Path
) -> None:
    """The bridge acks N ticks from its spool (database-service is down), is killed with
    SIGKILL, and restarts; once database-service is up, all N are stored exactly once."""
    del clickhouse, key_file
    dbs_port, bridge_port = free_port(), free_port()
    env = {**os.environ, **env_for(settings, tmp_path, dbs_port, bridge_port)}
    config = load_settings(environ=env_for(settings, tmp_path, dbs_port, bridge_port)).settings
    command = [sys.executable, "-m", "aitrading.cli", "serve", "data-bridge"]
    sym = symbol()
    bridge = await asyncio.create_subprocess_exec(*command, env=env)
    try:
        url = f"http://127.0.0.1:{bridge_port}"
        await _wait_live(url)
        token = await development_token(config, "kill9-test")
        client = BridgeClient(f"ws://127.0.0.1:{bridge_port}/api/v1/ingest", token)
        await client.connect()
        for i in range(0, 300, 3):
            await client.send_ticks([tick(sym, i), tick(sym, i + 1), tick(sym, i + 2)])
        assert await client.wait_acked(20), client.stats
        acked = client.stats.ticks_acked
        assert acked == 300
        bridge.send_signal(signal.SIGKILL)
        await bridge.wait()
        await client.close()
    finally:
        if bridge.returncode is None:
            bridge.kill()
            await bridge.wait()
    restarted = await asyncio.create_subprocess_exec(*command, env=env)
    try:
        async with serving(database_app(config, CollectorRegistry()), dbs_port):
            dbs = f"http://127.0.0.1:{dbs_port}"
            for _ in range(400):
                if len(await stored(dbs, sym)) >= acked:
                    break
                await asyncio.sleep(0.05)
            sequences = [t["sequence"] for t in await stored(dbs, sym)]
            assert sequences == list(range(300))  # every acked tick, each exactly once
    finally:
        restarted.terminate()
        await restarted.wait()


async def _wait_live(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        for _ in range(300):
            try:
                if (await http.get("/health/live")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"{url} did not come up")
