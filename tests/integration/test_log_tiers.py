"""Hot (redis-server), warm (chdb) and cold (zstd files) log tiers, migration and retention."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from aitrading.core.infrastructure.config_manager import Settings
from aitrading.core.logging.records import LEVELS, LogRecord
from aitrading.core.logging.retention_policy_manager import (
    DEFAULT_POLICIES,
    RetentionPolicy,
    RetentionStore,
    ages,
    enforce,
)
from aitrading.core.logging.tiered_log_storage import ColdTier, HotTier, TieredLogStorage, WarmTier
from aitrading.core.stores.clickhouse import ClickHouseStore
from aitrading.core.stores.postgres import PostgresStore
from aitrading.core.stores.redis_store import redis_url
from aitrading.services.database_service.schema import clickhouse as clickhouse_schema

pytestmark = pytest.mark.integration

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
NOW_MS = int(NOW.timestamp() * 1000)
HOUR, DAY = 3_600_000, 86_400_000


@pytest.fixture
async def storage(
    settings: Settings, clickhouse: ClickHouseStore, tmp_path: Path
) -> Iterator[TieredLogStorage]:
    await clickhouse_schema.migrate(clickhouse, 365)
    client = redis.Redis.from_url(redis_url(settings))
    hot = HotTier(client, namespace=f":{uuid.uuid4().hex[:8]}")
    yield TieredLogStorage(hot, WarmTier(clickhouse), ColdTier(tmp_path / "cold"))
    client.close()


def make(service: str, level: str, age_ms: int, trace: str = "") -> LogRecord:
    return LogRecord(
        ts_ms=NOW_MS - age_ms,
        level=level,
        service=service,
        message=f"{level} {age_ms}",
        trace_id=trace,
    )


def everywhere(storage: TieredLogStorage, service: str) -> list[LogRecord]:
    return storage.query(0, NOW_MS + DAY, service=service, limit=100_000)


async def test_migrate_moves_by_age_and_one_query_merges_all_tiers(
    storage: TieredLogStorage,
) -> None:
    service = f"svc-{uuid.uuid4().hex[:6]}"
    trace = uuid.uuid4().hex
    records = [
        make(service, "INFO", 1 * HOUR, trace),  # stays hot (INFO hot 24 h)
        make(service, "INFO", 30 * HOUR, trace),  # → warm
        make(service, "WARNING", 10 * DAY, trace),  # → warm (WARNING warm 30 d)
        make(service, "ERROR", 40 * DAY, trace),  # → cold (ERROR warm 30 d, kept 180 d)
    ]
    storage.hot.write(records)
    report = storage.migrate(ages(DEFAULT_POLICIES), NOW_MS)
    assert report.hot_to_warm >= 3
    assert report.warm_to_cold >= 1
    hot_ids = {r.record_id for _, r in storage.hot.scan()}
    assert records[0].record_id in hot_ids
    assert records[1].record_id not in hot_ids
    warm_ids = {r.record_id for r in storage.warm.query(0, NOW_MS + DAY, service=service)}
    assert warm_ids == {records[1].record_id, records[2].record_id}
    cold_ids = {r.record_id for r in storage.cold.query(0, NOW_MS + DAY)}
    assert records[3].record_id in cold_ids
    merged = storage.query(0, NOW_MS + DAY, trace_id=trace)
    assert [r.record_id for r in merged] == [r.record_id for r in reversed(records)]  # time order
    assert [
        r.record_id for r in storage.query(0, NOW_MS + DAY, service=service, level="ERROR")
    ] == [records[3].record_id]


@pytest.mark.parametrize("crash_at", ["hot-copied", "warm-copied"])
async def test_a_crash_mid_migration_then_a_rerun_neither_loses_nor_duplicates(
    storage: TieredLogStorage, crash_at: str
) -> None:
    service = f"svc-{uuid.uuid4().hex[:6]}"
    records = [
        make(service, level, age, uuid.uuid4().hex)
        for level in LEVELS
        for age in (2 * HOUR, 3 * DAY, 45 * DAY)
    ]
    storage.hot.write(records)

    def crash(step: str) -> None:
        if step == crash_at:
            raise RuntimeError(f"killed at {step}")

    with pytest.raises(RuntimeError, match="killed"):
        storage.migrate(ages(DEFAULT_POLICIES), NOW_MS, checkpoint=crash)
    storage.migrate(ages(DEFAULT_POLICIES), NOW_MS)  # the rerun
    storage.migrate(ages(DEFAULT_POLICIES), NOW_MS)  # and an idempotent third run
    found = everywhere(storage, service)
    ids = [r.record_id for r in found]
    assert len(ids) == len(set(ids))  # nothing twice
    expected = {
        r.record_id
        for r in records
        if r.ts_ms >= NOW_MS - DEFAULT_POLICIES[r.level].retention_days * DAY
    }
    assert expected <= set(ids)  # nothing lost (expired ones may be skipped)


async def test_enforce_removes_what_is_past_retention_in_every_tier(
    storage: TieredLogStorage,
) -> None:
    service = f"svc-{uuid.uuid4().hex[:6]}"
    keep, gone = [], []
    for level, policy in DEFAULT_POLICIES.items():
        days = policy.retention_days
        keep.append(make(service, level, (days - 1) * DAY))
        gone.append(make(service, level, (days + 2) * DAY))
    # older-than-retention records in every tier: written straight into warm and cold too
    storage.hot.write([gone[0], keep[0]])
    storage.warm.write(gone[1:3] + keep[1:3])
    for record in gone[3:] + keep[3:]:
        day = dt.datetime.fromtimestamp(record.ts_ms / 1000, dt.UTC).date().isoformat()
        storage.cold.export(day, record.level, service, [record])
    report = enforce(storage, DEFAULT_POLICIES, NOW)
    storage.warm.optimize()  # TTL applies at merges; force one
    assert "DELETE WHERE level = 'DEBUG'" in report.ttl
    remaining = {r.record_id for r in everywhere(storage, service)}
    assert {r.record_id for r in gone}.isdisjoint(remaining), report
    assert {r.record_id for r in keep} <= remaining
    again = enforce(storage, DEFAULT_POLICIES, NOW)  # idempotent
    assert again.cold_files_deleted == 0
    assert again.moved_hot_to_warm == 0


async def test_policies_are_validated_and_stored(postgres: PostgresStore) -> None:
    # The table is the alembic 0001 schema's; create it here too when this test runs alone.
    await postgres.pool.execute(
        "CREATE TABLE IF NOT EXISTS log_retention_policies (level text PRIMARY KEY,"
        " hot_hours integer NOT NULL, warm_days integer NOT NULL, retention_days integer NOT NULL,"
        " updated_at timestamptz NOT NULL DEFAULT now())"
    )
    store = RetentionStore(postgres.pool)
    assert (await store.load())["CRITICAL"].retention_days == 365
    await store.save({"level": "DEBUG", "hot_hours": 2, "warm_days": 3, "retention_days": 3})
    assert (await store.load())["DEBUG"].retention_days == 3
    with pytest.raises(ValueError, match=r"warm_days .* exceeds retention_days"):
        RetentionPolicy(level="INFO", hot_hours=1, warm_days=40, retention_days=30)
    with pytest.raises(ValueError, match="level"):
        RetentionPolicy(level="TRACE", hot_hours=1, warm_days=1, retention_days=1)
    await store.save(DEFAULT_POLICIES["DEBUG"])


def test_logs_cli_costs_measures_and_enforce_is_idempotent(
    settings: Settings, tmp_path: Path
) -> None:
    import json
    import os
    import subprocess
    import sys

    from aitrading.core.stores.embedded import EmbeddedPostgres

    env = {
        **os.environ,
        "AITRADING_DATA_DIR": str(tmp_path),  # its own chdb path
        "AITRADING_POSTGRES_DSN": EmbeddedPostgres(settings).dsn(),
        "AITRADING_REDIS_URL": redis_url(settings),
        "COLUMNS": "200",
    }
    command = [sys.executable, "-m", "aitrading.cli", "logs"]
    costs = subprocess.run(
        [*command, "costs", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert costs.returncode == 0, costs.stderr
    report = json.loads(costs.stdout)
    for tier in ("hot", "warm", "cold"):
        assert 0 < report["ratios"][tier] < 5, report["ratios"]  # measured, not zero or assumed
    assert report["ratios"]["warm"] < 1  # ClickHouse compresses our records
    assert report["baseline"] > 0
    for _ in range(2):
        run = subprocess.run(
            [*command, "enforce"], env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert run.returncode == 0, run.stderr
        assert "moved hot→warm" in run.stdout


def test_hot_writes_keep_every_record_in_order_with_its_trace_list_and_its_ttl(
    settings: Settings,
) -> None:
    """More records than one script call takes: every one lands in the stream in order, each
    traced one in its trace's list (with the TTL), an untraced one in none."""
    from aitrading.core.logging.tiered_log_storage import HOT_WRITE_CHUNK

    client = redis.Redis.from_url(redis_url(settings))
    namespace = f":{uuid.uuid4().hex[:8]}"
    hot = HotTier(client, namespace=namespace, trace_ttl_s=600)
    traces = [uuid.uuid4().hex for _ in range(3)]
    records = [
        make("hot-svc", "INFO", n, traces[n % 4] if n % 4 < 3 else "")
        for n in range(HOT_WRITE_CHUNK * 2 + 7)
    ]
    hot.write(records)
    assert [r.record_id for _, r in hot.scan()] == [r.record_id for r in records]
    for trace in traces:
        assert [r.record_id for r in hot.by_trace(trace)] == [
            r.record_id for r in records if r.trace_id == trace
        ]
        assert 0 < client.ttl(f"aitrading:logs:trace:{namespace}:{trace}") <= 600
    client.close()
