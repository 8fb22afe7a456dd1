"""Ticks/s stored through `POST /api/v1/ticks/batch` of a running database-service.

The service runs as its own process (`aitrading serve database-service`, chdb embedded,
migrations on start); this process posts batches of simulated ticks over HTTP from a few
concurrent clients. Baseline in the same run: the same ticks inserted straight into chdb with
clickhouse-connect in this process (no HTTP, no validation, no duplicate check).
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _harness import embedded, free_port, report

BATCH = 5000
BATCHES = 40
CLIENTS = 2


def make_ticks(start_msc: int, count: int, source: str) -> list[dict[str, Any]]:
    symbols = ["EURUSD", "GBPUSD", "USDJPY", "XAUUSD", "US30", "BTCUSD"]
    mid = 1.1
    out = []
    for i in range(count):
        mid *= 1 + random.gauss(0, 0.00005)
        out.append(
            {
                "source": source,
                "symbol": symbols[i % len(symbols)],
                "time_msc": start_msc + i,
                "sequence": i,
                "bid": round(mid, 5),
                "ask": round(mid + 0.00012, 5),
                "last": 0.0,
                "volume": 1,
                "volume_real": 1.0,
                "flags": 6,
            }
        )
    return out


def direct_baseline(ticks: list[dict[str, Any]]) -> float:
    import clickhouse_connect

    from aitrading.core.market.ticks import STORAGE_COLUMNS as TICK_COLUMNS

    with tempfile.TemporaryDirectory(prefix="aitrading-bench-ch-") as folder:
        client = clickhouse_connect.get_client(dsn=f"chdb://{folder}")
        client.command(
            "CREATE TABLE ticks (source LowCardinality(String), symbol LowCardinality(String),"
            " time DateTime64(3, 'UTC'), sequence UInt64, bid Float64, ask Float64, last Float64,"
            " volume UInt64, volume_real Float64, flags UInt32) ENGINE = MergeTree"
            " ORDER BY (symbol, time)"
        )
        started = time.perf_counter()
        for offset in range(0, len(ticks), BATCH):
            chunk = ticks[offset : offset + BATCH]
            columns = [
                [t["time_msc"] if c == "time" else t[c] for t in chunk] for c in TICK_COLUMNS
            ]
            client.insert("ticks", columns, column_names=list(TICK_COLUMNS), column_oriented=True)
        elapsed = time.perf_counter() - started
        client.close()
    return len(ticks) / elapsed


async def through_service(url: str, batches: list[list[dict[str, Any]]]) -> tuple[float, int]:
    queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)
    stored = 0

    async def client() -> None:
        nonlocal stored
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            while not queue.empty():
                answer = await http.post("/api/v1/ticks/batch", json={"ticks": queue.get_nowait()})
                answer.raise_for_status()
                stored += answer.json()["new"]

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return stored / (time.perf_counter() - started), stored


async def main() -> None:
    start = int(time.time() * 1000) - 3_600_000
    batches = [make_ticks(start + b * BATCH, BATCH, f"bench-{b}") for b in range(BATCHES)]
    with embedded(postgres=True, redis=True) as settings:
        port = free_port()
        env = {
            **os.environ,
            "AITRADING_DATA_DIR": str(settings.data_dir),
            "AITRADING_POSTGRES_PORT": str(settings.postgres.port),
            "AITRADING_REDIS_PORT": str(settings.redis.port),
            "AITRADING_SERVICES_DATABASE_SERVICE_PORT": str(port),
            "AITRADING_LOG_LEVEL": "WARNING",
        }
        service = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aitrading.cli", "serve", "database-service", env=env
        )
        url = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(base_url=url) as http:
                for _ in range(300):
                    try:
                        if (await http.get("/health/ready")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.1)
            await through_service(url, [make_ticks(start - 10_000_000, BATCH, "warm")])
            value, stored = await through_service(url, batches)
        finally:
            service.terminate()
            await asyncio.wait_for(service.wait(), 30)
    baseline = direct_baseline([t for b in batches for t in b])
    report(
        "tick_insert",
        f"ticks/s stored via POST /api/v1/ticks/batch ({BATCH}-tick batches, {CLIENTS} clients)",
        value,
        "ticks/s",
        baseline,
        "the same ticks inserted straight into chdb, no HTTP or validation",
        goal=100_000,
        stored=stored,
    )


if __name__ == "__main__":
    asyncio.run(main())
