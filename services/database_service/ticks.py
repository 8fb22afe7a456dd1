"""Ticks in ClickHouse: idempotent batch inserts, paged reads, OHLCV bars.

A batch is stored all or nothing, and only the ticks whose identity (source, symbol,
time_msc, sequence) is not stored yet are written, so a connector that resends after a lost
ack stores nothing twice — and the answer says how many were new. Check-and-insert is
serialised per process; ClickHouse's insert deduplication token (a hash of the written
identities) drops an identical block retried after a timeout, and ReplacingMergeTree on the
identity collapses anything that still slipped through.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
from typing import Any

import msgspec
from msgspec.structs import astuple

from aitrading.core.market.ticks import STORAGE_COLUMNS, SourcedTick
from aitrading.core.stores.clickhouse import ClickHouseStore
from aitrading.services.database_service.models import TIMEFRAME_MINUTES, Bar, TickBatchResult

_encode_json = msgspec.json.Encoder().encode
_PAGE_SELECT = (
    "SELECT source, symbol, toUnixTimestamp64Milli(time) AS t, sequence, bid, ask, last,"
    " volume, volume_real, flags FROM ticks FINAL"
    " WHERE symbol = %(symbol)s"
    " AND time >= fromUnixTimestamp64Milli(%(start)s, 'UTC')"
    " AND time < fromUnixTimestamp64Milli(%(end)s, 'UTC')"
)
_PAGE_ORDER = " ORDER BY t, source, sequence LIMIT %(limit)s"
_PAGE_FIRST = _PAGE_SELECT + _PAGE_ORDER
_PAGE_AFTER = (
    _PAGE_SELECT + " AND (toUnixTimestamp64Milli(time), source, sequence)"
    " > (%(after_time)s, %(after_source)s, %(after_seq)s)" + _PAGE_ORDER
)


class CursorError(ValueError):
    """A paging cursor that this service did not issue."""


def encode_cursor(time_msc: int, source: str, sequence: int) -> str:
    raw = json.dumps([time_msc, source, sequence], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        time_msc, source, sequence = json.loads(raw)
        return int(time_msc), str(source), int(sequence)
    except (ValueError, TypeError) as exc:
        raise CursorError("invalid cursor") from exc


# The write path's queries are small (a few hundred rows a second): on one thread they leave
# the other cores to the services that ack ticks. With ClickHouse's default, each insert's
# burst across every core put 10-15 ms into the connector's ack p99 on 2 cores (measured by
# bench/connector.py; docs/performance.md).
_ONE_THREAD = {"max_threads": 1, "max_insert_threads": 1}


class TickRepository:
    def __init__(self, store: ClickHouseStore) -> None:
        self._store = store
        self._write_lock = asyncio.Lock()

    async def insert_batch(self, ticks: list[SourcedTick]) -> TickBatchResult:
        unique: dict[tuple[str, str, int, int], SourcedTick] = {}
        for tick in ticks:
            unique.setdefault(tick.identity, tick)
        async with self._write_lock:
            existing = await self._existing(list(unique.values()))
            fresh = [t for key, t in unique.items() if key not in existing]
            if fresh:
                await self._insert(fresh)
        return TickBatchResult(
            received=len(ticks), new=len(fresh), duplicates=len(ticks) - len(fresh)
        )

    async def _existing(self, ticks: list[SourcedTick]) -> set[tuple[str, str, int, int]]:
        """Which of these identities are stored already.

        Bounded by the batch's sources and sequence range as well as its time range: with
        the time range alone, every batch read back all the ticks stored in that span (a
        connector's batches overlap in time), so storing slowed down as the table grew (the
        profile of bench/ws_ingest.py: a quarter of database-service's CPU). Read as columns.
        """
        columns = await self._store.query_columns(
            "SELECT source, symbol, toUnixTimestamp64Milli(time), sequence FROM ticks"
            " WHERE symbol IN %(symbols)s AND source IN %(sources)s"
            " AND time BETWEEN fromUnixTimestamp64Milli(%(low)s, 'UTC')"
            " AND fromUnixTimestamp64Milli(%(high)s, 'UTC')"
            " AND sequence BETWEEN %(seq_low)s AND %(seq_high)s",
            {
                "symbols": sorted({t.symbol for t in ticks}),
                "sources": sorted({t.source for t in ticks}),
                "low": min(t.time_msc for t in ticks),
                "high": max(t.time_msc for t in ticks),
                "seq_low": min(t.sequence for t in ticks),
                "seq_high": max(t.sequence for t in ticks),
            },
            settings=_ONE_THREAD,
        )
        if not columns or not columns[0]:
            return set()
        sources, symbols, times, sequences = columns
        return set(
            zip(
                map(str, sources),
                map(str, symbols),
                map(int, times),
                map(int, sequences),
                strict=True,
            )
        )

    async def _insert(self, ticks: list[SourcedTick]) -> None:
        columns = storage_columns(ticks)
        await self._store.run(
            self._store.client.insert,
            "ticks",
            columns,
            column_names=list(STORAGE_COLUMNS),
            column_oriented=True,
            settings={"insert_deduplication_token": deduplication_token(columns), **_ONE_THREAD},
        )

    async def query(
        self, symbol: str, start_msc: int, end_msc: int, limit: int, cursor: str | None
    ) -> tuple[list[SourcedTick], str | None]:
        after = decode_cursor(cursor) if cursor else None
        params: dict[str, Any] = {
            "symbol": symbol,
            "start": start_msc,
            "end": end_msc,
            "limit": limit + 1,
        }
        sql = _PAGE_FIRST
        if after is not None:
            sql = _PAGE_AFTER
            params.update(after_time=after[0], after_source=after[1], after_seq=after[2])
        rows = await self._store.query_rows(sql, params)
        ticks = [
            SourcedTick(
                str(r[0]),
                str(r[1]),
                int(r[2]),
                int(r[3]),
                float(r[4]),
                float(r[5]),
                float(r[6]),
                int(r[7]),
                float(r[8]),
                int(r[9]),
            )
            for r in rows[:limit]
        ]
        next_cursor = None
        if len(rows) > limit:
            last = ticks[-1]
            next_cursor = encode_cursor(last.time_msc, last.source, last.sequence)
        return ticks, next_cursor

    async def ohlcv(self, symbol: str, timeframe: str, start_msc: int, end_msc: int) -> list[Bar]:
        minutes = TIMEFRAME_MINUTES[timeframe]
        rows = await self._store.query_rows(
            "SELECT toStartOfInterval(minute, toIntervalMinute(%(minutes)s)) AS bucket,"
            " argMinMerge(open), max(high), min(low), argMaxMerge(close), sum(volume), sum(ticks)"
            " FROM ohlcv_1m WHERE symbol = %(symbol)s"
            " AND minute >= toStartOfMinute(fromUnixTimestamp64Milli(%(start)s, 'UTC'))"
            " AND minute < fromUnixTimestamp64Milli(%(end)s, 'UTC')"
            " GROUP BY bucket ORDER BY bucket",
            {"symbol": symbol, "minutes": minutes, "start": start_msc, "end": end_msc},
        )
        return [
            Bar(
                time=_utc(r[0]),
                open=r[1],
                high=r[2],
                low=r[3],
                close=r[4],
                volume=r[5],
                ticks=int(r[6]),
            )
            for r in rows
        ]


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def storage_columns(ticks: list[SourcedTick]) -> list[list[Any]]:
    """The batch column by column, in STORAGE_COLUMNS order (the struct's field order),
    transposed in C."""
    return [list(c) for c in zip(*map(astuple, ticks), strict=True)]


def deduplication_token(columns: list[list[Any]]) -> str:
    """ClickHouse's insert deduplication token for a batch: a hash of its identity columns
    (source, symbol, time, sequence) encoded in one C call, so a batch sent again after a lost
    answer is dropped by the engine whatever else it carries."""
    return hashlib.sha256(_encode_json(columns[:4])).hexdigest()
