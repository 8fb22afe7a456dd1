"""Log router throughput with all three sinks on, and point-query latency by trace id per tier.

- records/s accepted by `logging` → router (hot: embedded redis-server, warm: chdb, stdout
  sink into /dev/null), and records/s delivered to the sinks; baseline in the same run: the
  same logging calls into a stdlib `NullHandler` (the cost of the logging call itself);
- p50/p99 of a query by trace id in each tier (hot LRANGE, warm ClickHouse with a bloom-filter
  index, cold zstd files), over 200 lookups each.
"""

from __future__ import annotations

import logging
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).parent))
from _harness import embedded, report

from aitrading.core.logging.compression_probe import sample_records
from aitrading.core.logging.optimized_log_router import LogRouter, StdoutSink, default_routes
from aitrading.core.logging.tiered_log_storage import ColdTier, HotTier, WarmTier
from aitrading.core.stores.clickhouse import ClickHouseStore
from aitrading.core.stores.redis_store import redis_url

RECORDS = 200_000
LOOKUPS = 200


def log_calls(logger: logging.Logger, count: int) -> float:
    started = time.perf_counter()
    for n in range(count):
        if n % 10 == 0:
            logger.warning("upstream slow", extra={"upstream": "database-service", "n": n})
        else:
            logger.info("tick batch stored", extra={"ticks": 1000, "n": n})
    return count / (time.perf_counter() - started)


def percentiles(samples: list[float]) -> tuple[float, float]:
    return statistics.median(samples), statistics.quantiles(samples, n=100)[98]


def main() -> None:
    import asyncio

    with embedded(redis=True) as settings, tempfile.TemporaryDirectory() as scratch:
        client = redis.Redis.from_url(redis_url(settings))
        clickhouse = asyncio.run(ClickHouseStore.create(settings))
        from aitrading.services.database_service.schema import clickhouse as schema

        asyncio.run(schema.migrate(clickhouse, 365))
        hot, warm = HotTier(client, namespace=":bench"), WarmTier(clickhouse)
        with open("/dev/null", "w") as devnull:
            sinks = {"hot": hot, "warm": warm, "stdout": StdoutSink(devnull)}
            router = LogRouter(
                "bench", default_routes(sinks), Path(scratch), capacity=200_000, batch_size=5_000
            )
            logger = logging.getLogger("bench.router")
            logger.propagate = False
            logger.setLevel(logging.INFO)
            null = logging.getLogger("bench.null")
            null.propagate = False
            null.addHandler(logging.NullHandler())
            null.setLevel(logging.INFO)
            baseline = log_calls(null, RECORDS)
            logger.addHandler(router.handler())
            router.start()
            started = time.perf_counter()
            accepted_rate = log_calls(logger, RECORDS)
            router.stop(timeout_s=120)
            delivered = sum(router.written.values())
            delivered_rate = delivered / (time.perf_counter() - started)
            dropped = sum(router.dropped.values())

        # point queries by trace id, per tier
        records = sample_records(20_000)
        hot_q = HotTier(client, namespace=":bench-q")
        hot_q.write(records)
        table_sample = records[:]
        warm.write(table_sample)
        cold = ColdTier(Path(scratch) / "cold")
        for day in range(10):
            chunk = records[day * 2000 : (day + 1) * 2000]
            cold.export(f"2026-01-{day + 1:02d}", "INFO", "bench", chunk)
        probes = [records[i].trace_id for i in range(0, 20_000, 100)][:LOOKUPS]
        latencies: dict[str, list[float]] = {"hot": [], "warm": [], "cold": []}
        for trace in probes:
            t0 = time.perf_counter()
            assert hot_q.by_trace(trace)
            latencies["hot"].append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            assert warm.query(0, 4_000_000_000_000, trace_id=trace)
            latencies["warm"].append((time.perf_counter() - t0) * 1000)
        for trace in probes[:20]:  # cold scans files: fewer lookups
            t0 = time.perf_counter()
            assert any(r.trace_id == trace for r in cold.query(0, 4_000_000_000_000))
            latencies["cold"].append((time.perf_counter() - t0) * 1000)
        client.close()
        asyncio.run(clickhouse.close())
    read = {}
    for tier, samples in latencies.items():
        p50, p99 = percentiles(samples)
        read[f"{tier}_trace_query_ms_p50"] = round(p50, 3)
        read[f"{tier}_trace_query_ms_p99"] = round(p99, 3)
    report(
        "log_router",
        "records/s accepted by the router (hot + warm + stdout sinks on)",
        accepted_rate,
        "records/s",
        baseline,
        "the same logging calls into a NullHandler",
        goal=100_000,
        delivered_per_s=round(delivered_rate, 1),
        dropped=dropped,
        records=RECORDS,
        read_targets_ms={"hot": 1, "warm": 100, "cold": 2000},
        **read,
        run=uuid.uuid4().hex[:6],
    )


if __name__ == "__main__":
    main()
