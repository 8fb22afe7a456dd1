"""ClickHouse schema: versioned DDL, applied once each, recorded in `schema_migrations`.

Every statement is idempotent (IF NOT EXISTS), so a migration interrupted half way is simply
run again. The ticks table is keyed by the tick identity (source, symbol, time, sequence):
ReplacingMergeTree collapses any duplicate that slipped past the service's own check, and
`non_replicated_deduplication_window` makes ClickHouse drop a retried identical insert block.
"""

from __future__ import annotations

from dataclasses import dataclass

from aitrading.core.stores.clickhouse import ClickHouseStore


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def migrations(tick_ttl_days: int) -> list[Migration]:
    return [
        Migration(
            1,
            "ticks",
            (
                f"""
                CREATE TABLE IF NOT EXISTS ticks (
                    source LowCardinality(String),
                    symbol LowCardinality(String),
                    time DateTime64(3, 'UTC'),
                    sequence UInt64,
                    bid Float64,
                    ask Float64,
                    last Float64,
                    volume UInt64,
                    volume_real Float64,
                    flags UInt32,
                    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
                )
                ENGINE = ReplacingMergeTree(inserted_at)
                PARTITION BY toDate(time)
                ORDER BY (symbol, time, source, sequence)
                TTL toDateTime(time) + INTERVAL {int(tick_ttl_days)} DAY
                SETTINGS non_replicated_deduplication_window = 1000
                """,
            ),
        ),
        Migration(
            2,
            "ohlcv_1m",
            (
                """
                CREATE TABLE IF NOT EXISTS ohlcv_1m (
                    symbol LowCardinality(String),
                    minute DateTime('UTC'),
                    open AggregateFunction(argMin, Float64, DateTime64(3, 'UTC')),
                    high SimpleAggregateFunction(max, Float64),
                    low SimpleAggregateFunction(min, Float64),
                    close AggregateFunction(argMax, Float64, DateTime64(3, 'UTC')),
                    volume SimpleAggregateFunction(sum, Float64),
                    ticks SimpleAggregateFunction(sum, UInt64)
                )
                ENGINE = AggregatingMergeTree
                PARTITION BY toDate(minute)
                ORDER BY (symbol, minute)
                """,
                """
                CREATE MATERIALIZED VIEW IF NOT EXISTS ohlcv_1m_mv TO ohlcv_1m AS
                SELECT
                    symbol,
                    toStartOfMinute(time) AS minute,
                    argMinState(bid, time) AS open,
                    max(bid) AS high,
                    min(bid) AS low,
                    argMaxState(bid, time) AS close,
                    sum(volume_real) AS volume,
                    toUInt64(count()) AS ticks
                FROM ticks
                GROUP BY symbol, minute
                """,
            ),
        ),
        Migration(
            3,
            "account_info",
            (
                """
                CREATE TABLE IF NOT EXISTS account_info (
                    source LowCardinality(String),
                    login UInt64,
                    time DateTime64(3, 'UTC'),
                    currency LowCardinality(String),
                    leverage UInt32,
                    balance Float64,
                    equity Float64,
                    margin Float64,
                    margin_free Float64,
                    margin_level Float64,
                    profit Float64
                )
                ENGINE = ReplacingMergeTree
                PARTITION BY toYYYYMM(time)
                ORDER BY (login, time, source)
                """,
            ),
        ),
        Migration(
            4,
            "logs",
            (
                """
                CREATE TABLE IF NOT EXISTS logs (
                    ts DateTime64(3, 'UTC'),
                    level LowCardinality(String),
                    service LowCardinality(String),
                    trace_id String,
                    request_id String,
                    logger String,
                    message String,
                    fields String,
                    record_id String
                )
                ENGINE = ReplacingMergeTree
                PARTITION BY toDate(ts)
                ORDER BY (service, level, ts, record_id)
                SETTINGS non_replicated_deduplication_window = 1000
                """,
            ),
        ),
        Migration(
            5,
            "logs_trace_index",
            (
                "ALTER TABLE logs ADD INDEX IF NOT EXISTS logs_trace trace_id"
                " TYPE bloom_filter(0.01) GRANULARITY 4",
                "ALTER TABLE logs ADD INDEX IF NOT EXISTS logs_record record_id"
                " TYPE bloom_filter(0.01) GRANULARITY 4",
            ),
        ),
        Migration(
            6,
            "tick_dead_letters",
            (
                # Ticks that were acked but that storage still refused: kept with the reason,
                # never silently dropped (`aitrading ticks dead-letter list`).
                """
                CREATE TABLE IF NOT EXISTS tick_dead_letters (
                    received_at DateTime64(3, 'UTC') DEFAULT now64(3),
                    source String,
                    reason String,
                    payload String,
                    fingerprint FixedString(32)
                )
                ENGINE = ReplacingMergeTree(received_at)
                ORDER BY (fingerprint)
                """,
            ),
        ),
    ]


_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree ORDER BY version
"""


async def migrate(store: ClickHouseStore, tick_ttl_days: int) -> list[str]:
    """Apply what is not applied yet; returns the names applied now."""
    await store.run(store.client.command, _LEDGER)
    rows = await store.query_rows("SELECT version FROM schema_migrations FINAL")
    done = {int(r[0]) for r in rows}
    applied = []
    for migration in migrations(tick_ttl_days):
        if migration.version in done:
            continue
        for statement in migration.statements:
            await store.run(store.client.command, statement)
        await store.run(
            store.client.insert,
            "schema_migrations",
            [[migration.version, migration.name]],
            column_names=["version", "name"],
        )
        applied.append(f"clickhouse {migration.version:04d} {migration.name}")
    return applied
