"""Measure what each tier really stores per byte of our own log records.

Writes a sample of representative records — the router's own format, with trace ids,
request ids and structured fields — into a scratch hot namespace, a scratch ClickHouse table
and a scratch cold directory, asks each store what it used, and cleans up. The cost model
uses these ratios; nothing about compression is assumed.
"""

from __future__ import annotations

import random
import tempfile
import uuid
from pathlib import Path

import redis

from aitrading.core.logging.cost_analytics import Ratios
from aitrading.core.logging.records import LogRecord, encode, fields_json
from aitrading.core.logging.tiered_log_storage import ColdTier, HotTier, WarmTier
from aitrading.core.stores.clickhouse import ClickHouseStore

_MESSAGES = (
    ("INFO", "tick batch stored", {"symbols": 5, "ticks": 1000, "durable": "stored"}),
    ("INFO", "request completed", {"route": "/api/v1/ticks", "status": 200, "ms": 3.2}),
    ("DEBUG", "flush", {"batch": 512, "queue": 31}),
    ("WARNING", "upstream slow", {"upstream": "database-service", "ms": 812.5}),
    ("ERROR", "order rejected", {"reason": "insufficient margin", "symbol": "XAUUSD"}),
)


def sample_records(count: int, seed: int = 7) -> list[LogRecord]:
    rng = random.Random(seed)  # noqa: S311 - sample data
    start = 1_790_000_000_000
    services = ("api-gateway", "data-bridge", "database-service", "trading-engine")
    out = []
    for n in range(count):
        level, message, fields = _MESSAGES[rng.randrange(len(_MESSAGES))]
        out.append(
            LogRecord(
                ts_ms=start + n * rng.randint(1, 20),
                level=level,
                service=rng.choice(services),
                message=message,
                logger=f"aitrading.services.{rng.choice(services)}",
                trace_id=uuid.UUID(int=rng.getrandbits(128)).hex,
                request_id=uuid.UUID(int=rng.getrandbits(128)).hex[:24],
                fields=fields_json({**fields, "n": n}),
            )
        )
    return out


def measure(redis_client: redis.Redis, clickhouse: ClickHouseStore, count: int = 20_000) -> Ratios:
    records = sample_records(count)
    raw = sum(len(encode(r)) + 1 for r in records)
    namespace = f":probe:{uuid.uuid4().hex[:8]}"
    hot = HotTier(redis_client, namespace=namespace)
    hot.write(records)
    hot_bytes = hot.memory_bytes()
    redis_client.delete(f"aitrading:logs:hot{namespace}")
    for record in records:
        redis_client.delete(f"aitrading:logs:trace:{namespace[1:]}:{record.trace_id}")
    table = f"logs_probe_{uuid.uuid4().hex[:8]}"
    clickhouse.run_sync(
        clickhouse.client.command, f"CREATE TABLE {table} AS logs"
    )  # same schema, codecs and order key
    try:
        warm = WarmTier(clickhouse, table)
        warm.write(records)
        warm.optimize()
        warm_bytes, _ = warm.compression()
    finally:
        clickhouse.run_sync(clickhouse.client.command, f"DROP TABLE IF EXISTS {table}")
    with tempfile.TemporaryDirectory() as folder:
        cold = ColdTier(Path(folder))
        cold.export("2026-01-01", "INFO", "probe", records)
        cold_bytes, _ = cold.compression()
    return Ratios(hot=hot_bytes / raw, warm=warm_bytes / raw, cold=cold_bytes / raw)
