"""Hot, warm and cold log tiers, the moves between them, and one query over all three.

- hot: the Redis-protocol store — one capped stream plus a per-trace list for O(1) trace
  lookups; hours of recent records.
- warm: ClickHouse `logs` (MergeTree by day, bloom-filter index on trace id); days to weeks.
- cold: zstd-compressed JSON lines, one file per (day, level, service), under a directory.

`migrate` moves records by age, each step copy-then-delete: a crash between the two leaves a
record in both tiers, and the rerun copies it again — warm deduplicates by `record_id`
(ReplacingMergeTree, FINAL reads, insert deduplication tokens) and a cold file is rewritten
whole (merged by record_id, atomically renamed), so nothing is lost and nothing is duplicated.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import zstandard

from aitrading.core.logging.records import LEVELS, LogRecord, decode, encode
from aitrading.core.stores.clickhouse import ClickHouseStore

HOT_STREAM = "aitrading:logs:hot"
HOT_TRACE = "aitrading:logs:trace:"
DAY_MS = 86_400_000
COLUMNS = (
    "ts",
    "level",
    "service",
    "trace_id",
    "request_id",
    "logger",
    "message",
    "fields",
    "record_id",
)


@dataclass(frozen=True)
class TierAges:
    """How long a level stays in each tier (from the retention policies)."""

    hot_hours: dict[str, float]
    warm_days: dict[str, float]
    retention_days: dict[str, float]


@dataclass
class MigrationReport:
    hot_to_warm: int = 0
    warm_to_cold: int = 0
    cold_files: int = 0
    skipped_expired: int = 0
    details: list[str] = field(default_factory=list)


# Records per script call: a script runs alone in the server, so a chunk stays well under a
# millisecond of its time (rate limits and revocations share the store).
HOT_WRITE_CHUNK = 500
# KEYS[1]: the stream; KEYS[2..]: the trace lists of the chunk (Dragonfly wants every key a
# script touches declared). ARGV: maxlen, the trace lists' TTL, then per record its JSON and
# the index in KEYS of its trace list (0: no trace).
_HOT_APPEND = """
local maxlen, ttl = ARGV[1], ARGV[2]
for i = 3, #ARGV, 2 do
  local raw, trace = ARGV[i], tonumber(ARGV[i + 1])
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', 'r', raw)
  if trace > 0 then
    redis.call('RPUSH', KEYS[trace], raw)
  end
end
for k = 2, #KEYS do
  redis.call('EXPIRE', KEYS[k], ttl)
end
return (#ARGV - 2) / 2
"""

_SELECT_LOGS = (
    "SELECT toUnixTimestamp64Milli(ts), level, service, trace_id, request_id, logger,"
    " message, fields, record_id FROM {table} FINAL WHERE {where} ORDER BY ts"
)


class HotTier:
    name = "hot"

    def __init__(
        self,
        client: redis.Redis,
        maxlen: int = 2_000_000,
        trace_ttl_s: int = 172_800,
        namespace: str = "",
    ) -> None:
        self._redis = client
        self._maxlen = maxlen
        self._trace_ttl = trace_ttl_s
        self._stream = HOT_STREAM + namespace
        self._trace = HOT_TRACE + (f"{namespace}:" if namespace else "")
        self._append: Any = client.register_script(_HOT_APPEND)

    def write(self, records: list[LogRecord]) -> None:
        """One script call per chunk of records: redis-py spent more CPU building a pipeline's
        commands one by one (xadd, rpush, expire per record) than the rest of the router did
        per record; one call's arguments are packed in C."""
        for start in range(0, len(records), HOT_WRITE_CHUNK):
            keys: dict[str, int] = {self._stream: 1}
            args: list[bytes | int] = [self._maxlen, self._trace_ttl]
            for record in records[start : start + HOT_WRITE_CHUNK]:
                trace = record.trace_id and keys.setdefault(
                    self._trace + record.trace_id, len(keys) + 1
                )
                args += (encode(record), trace or 0)
            self._append(keys=list(keys), args=args)

    def scan(self, batch: int = 5000) -> Iterator[tuple[bytes, LogRecord]]:
        """Every record in the stream, oldest first, with its entry id."""
        start = b"-"
        while True:
            entries: Any = self._redis.xrange(self._stream, min=start, max=b"+", count=batch)
            if not entries:
                return
            for entry_id, values in entries:
                yield bytes(entry_id), decode(values[b"r"])
            start = b"(" + bytes(entries[-1][0])

    def by_trace(self, trace_id: str) -> list[LogRecord]:
        return [decode(raw) for raw in self._redis.lrange(self._trace + trace_id, 0, -1)]

    def delete(self, entry_ids: list[bytes]) -> None:
        for start in range(0, len(entry_ids), 1000):
            self._redis.xdel(self._stream, *entry_ids[start : start + 1000])

    def query(self, start_ms: int, end_ms: int) -> Iterator[LogRecord]:
        for _, record in self.scan():
            if start_ms <= record.ts_ms < end_ms:
                yield record

    def memory_bytes(self) -> int:
        usage = self._redis.memory_usage(self._stream, samples=0)
        return int(usage or 0)


class WarmTier:
    name = "warm"

    def __init__(self, store: ClickHouseStore, table: str = "logs") -> None:
        if not table.isidentifier():
            raise ValueError(f"invalid table name {table!r}")
        self._store = store
        self.table = table

    def write(self, records: list[LogRecord]) -> None:
        columns: list[list[Any]] = [
            [r.ts_ms for r in records],
            [r.level for r in records],
            [r.service for r in records],
            [r.trace_id for r in records],
            [r.request_id for r in records],
            [r.logger for r in records],
            [r.message for r in records],
            [r.fields for r in records],
            [r.record_id for r in records],
        ]
        token = hashlib.sha256("".join(r.record_id for r in records).encode()).hexdigest()
        self._store.run_sync(
            self._store.client.insert,
            self.table,
            columns,
            column_names=list(COLUMNS),
            column_oriented=True,
            settings={"insert_deduplication_token": token},
        )

    def query(
        self,
        start_ms: int,
        end_ms: int,
        level: str | None = None,
        service: str | None = None,
        trace_id: str | None = None,
    ) -> list[LogRecord]:
        conditions = [
            "ts >= fromUnixTimestamp64Milli(%(start)s, 'UTC')",
            "ts < fromUnixTimestamp64Milli(%(end)s, 'UTC')",
        ]
        params: dict[str, Any] = {"start": start_ms, "end": end_ms}
        for column, value in (("level", level), ("service", service), ("trace_id", trace_id)):
            if value is not None:
                conditions.append(f"{column} = %({column})s")
                params[column] = value
        return self._select(" AND ".join(conditions), params)

    def groups_older_than(self, cutoffs_ms: dict[str, int]) -> list[tuple[str, str, str]]:
        """(day, level, service) groups whose whole day is older than its level's cutoff."""
        found: list[tuple[str, str, str]] = []
        for level, cutoff in cutoffs_ms.items():
            rows = self._store.run_sync(
                self._store.client.query,
                f"SELECT DISTINCT toString(toDate(ts)), service FROM {self.table} FINAL"  # noqa: S608 - table is a validated identifier
                " WHERE level = %(level)s AND toDate(ts) < toDate(fromUnixTimestamp64Milli("
                "%(cutoff)s, 'UTC'))",
                parameters={"level": level, "cutoff": cutoff},
            ).result_rows
            found += [(str(day), level, str(service)) for day, service in rows]
        return sorted(found)

    def group(self, day: str, level: str, service: str) -> list[LogRecord]:
        return self._select(
            "toDate(ts) = %(day)s AND level = %(level)s AND service = %(service)s",
            {"day": day, "level": level, "service": service},
        )

    def delete_group(self, day: str, level: str, service: str) -> None:
        self._store.run_sync(
            self._store.client.command,
            f"ALTER TABLE {self.table} DELETE WHERE toDate(ts) = %(day)s AND level = %(level)s"
            " AND service = %(service)s",
            parameters={"day": day, "level": level, "service": service},
            settings={"mutations_sync": 2},
        )

    def apply_ttl(self, clause: str) -> None:
        self._store.run_sync(
            self._store.client.command, f"ALTER TABLE {self.table} MODIFY {clause}"
        )

    def optimize(self) -> None:
        """Merge now, which also applies TTL rules (tests and `enforce --now`)."""
        self._store.run_sync(self._store.client.command, f"OPTIMIZE TABLE {self.table} FINAL")

    def compression(self) -> tuple[int, int]:
        """(compressed, uncompressed) bytes of the table's active parts, as ClickHouse reports."""
        rows = self._store.run_sync(
            self._store.client.query,
            "SELECT sum(data_compressed_bytes), sum(data_uncompressed_bytes) FROM system.parts"
            " WHERE active AND database = currentDatabase() AND table = %(table)s",
            parameters={"table": self.table},
        ).result_rows
        compressed, uncompressed = rows[0] if rows else (0, 0)
        return int(compressed or 0), int(uncompressed or 0)

    def _select(self, where: str, params: dict[str, Any]) -> list[LogRecord]:
        # `where` is assembled in this class from fixed column names; values are parameters.
        sql = _SELECT_LOGS.format(table=self.table, where=where)
        rows = self._store.run_sync(self._store.client.query, sql, parameters=params).result_rows
        return [
            LogRecord(
                ts_ms=int(r[0]),
                level=r[1],
                service=r[2],
                trace_id=r[3],
                request_id=r[4],
                logger=r[5],
                message=r[6],
                fields=r[7],
                record_id=r[8],
            )
            for r in rows
        ]


class ColdTier:
    name = "cold"

    def __init__(self, root: Path, level: int = 9) -> None:
        self.root = root
        self._level = level

    def path(self, day: str, level: str, service: str) -> Path:
        return self.root / day / level / f"{service}.jsonl.zst"

    def export(self, day: str, level: str, service: str, records: list[LogRecord]) -> int:
        """Write (or merge into) the group's file atomically; returns the records it holds."""
        target = self.path(day, level, service)
        merged = {r.record_id: r for r in self._read(target)}
        merged.update({r.record_id: r for r in records})
        ordered = sorted(merged.values(), key=lambda r: (r.ts_ms, r.record_id))
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
        data = b"".join(encode(r) + b"\n" for r in ordered)
        with open(tmp, "wb") as handle:
            handle.write(zstandard.ZstdCompressor(level=self._level).compress(data))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        return len(ordered)

    def query(self, start_ms: int, end_ms: int) -> Iterator[LogRecord]:
        for path in self.files():
            day = dt.date.fromisoformat(path.parent.parent.name)
            day_start = int(
                dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000
            )
            if day_start + DAY_MS <= start_ms or day_start >= end_ms:
                continue
            for record in self._read(path):
                if start_ms <= record.ts_ms < end_ms:
                    yield record

    def files(self) -> list[Path]:
        return sorted(self.root.glob("*/*/*.jsonl.zst")) if self.root.exists() else []

    def delete_older_than(self, cutoffs_ms: dict[str, int]) -> list[Path]:
        removed = []
        for path in self.files():
            level = path.parent.name
            day = dt.date.fromisoformat(path.parent.parent.name)
            day_end = (
                int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)
                + DAY_MS
            )
            if level in cutoffs_ms and day_end <= cutoffs_ms[level]:
                path.unlink()
                removed.append(path)
        return removed

    def compression(self) -> tuple[int, int]:
        compressed = uncompressed = 0
        for path in self.files():
            compressed += path.stat().st_size
            uncompressed += len(
                zstandard.ZstdDecompressor().decompress(path.read_bytes(), max_output_size=1 << 31)
            )
        return compressed, uncompressed

    def _read(self, path: Path) -> list[LogRecord]:
        if not path.exists():
            return []
        raw = zstandard.ZstdDecompressor().decompress(path.read_bytes(), max_output_size=1 << 31)
        return [decode(line) for line in raw.splitlines() if line]


class TieredLogStorage:
    def __init__(self, hot: HotTier, warm: WarmTier, cold: ColdTier) -> None:
        self.hot = hot
        self.warm = warm
        self.cold = cold

    def migrate(
        self, ages: TierAges, now_ms: int, checkpoint: Callable[[str], None] | None = None
    ) -> MigrationReport:
        """Move records by age; `checkpoint(step)` is called between copy and delete (tests
        interrupt there)."""
        report = MigrationReport()
        step = checkpoint or (lambda _: None)
        hot_cutoffs = {lvl: now_ms - int(ages.hot_hours[lvl] * 3_600_000) for lvl in LEVELS}
        moving: list[tuple[bytes, LogRecord]] = [
            (entry, record)
            for entry, record in self.hot.scan()
            if record.ts_ms < hot_cutoffs.get(record.level, now_ms)
        ]
        for start in range(0, len(moving), 5000):
            chunk = moving[start : start + 5000]
            self.warm.write([record for _, record in chunk])
            step("hot-copied")
            self.hot.delete([entry for entry, _ in chunk])
            report.hot_to_warm += len(chunk)
        warm_cutoffs = {lvl: now_ms - int(ages.warm_days[lvl] * DAY_MS) for lvl in LEVELS}
        expired = {lvl: now_ms - int(ages.retention_days[lvl] * DAY_MS) for lvl in LEVELS}
        for day, level, service in self.warm.groups_older_than(warm_cutoffs):
            day_end = (
                int(dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC).timestamp() * 1000)
                + DAY_MS
            )
            if day_end <= expired[level]:
                report.skipped_expired += 1  # past retention: the TTL deletes it, no export
                continue
            records = self.warm.group(day, level, service)
            if records:
                self.cold.export(day, level, service, records)
                report.cold_files += 1
            step("warm-copied")
            self.warm.delete_group(day, level, service)
            report.warm_to_cold += len(records)
            report.details.append(f"{day} {level} {service}: {len(records)} to cold")
        return report

    def query(
        self,
        start_ms: int,
        end_ms: int,
        level: str | None = None,
        service: str | None = None,
        trace_id: str | None = None,
        limit: int = 1000,
    ) -> list[LogRecord]:
        """Records from every tier, merged in time order, each once."""

        def keep(record: LogRecord) -> bool:
            return (
                (level is None or record.level == level)
                and (service is None or record.service == service)
                and (trace_id is None or record.trace_id == trace_id)
                and start_ms <= record.ts_ms < end_ms
            )

        hot: Iterable[LogRecord] = (
            self.hot.by_trace(trace_id) if trace_id else self.hot.query(start_ms, end_ms)
        )
        sources = [
            sorted(filter(keep, hot), key=_order),
            sorted(
                filter(keep, self.warm.query(start_ms, end_ms, level, service, trace_id)),
                key=_order,
            ),
            sorted(filter(keep, self.cold.query(start_ms, end_ms)), key=_order),
        ]
        seen: set[str] = set()
        merged: list[LogRecord] = []
        for record in heapq.merge(*sources, key=_order):
            if record.record_id in seen:
                continue
            seen.add(record.record_id)
            merged.append(record)
            if len(merged) >= limit:
                break
        return merged


def _order(record: LogRecord) -> tuple[int, str]:
    return (record.ts_ms, record.record_id)
