"""TickSink batching and durability decisions, with a recording stand-in for database-service."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from aitrading.core.market.ticks import SourcedTick
from aitrading.services.data_bridge import spool as spool_module
from aitrading.services.data_bridge.sink import (
    Forwarding,
    ForwardingEvent,
    TickSink,
    next_forwarding,
)
from aitrading.services.data_bridge.spool import Spool
from aitrading.services.database_service.client import DatabaseServiceUnavailableError
from aitrading.services.database_service.models import TickBatchResult


class RecordingDatabase:
    def __init__(self, available: bool = True) -> None:
        self.available = available
        self.batches: list[int] = []

    async def insert_ticks_raw(self, body: bytes) -> TickBatchResult:
        if not self.available:
            raise DatabaseServiceUnavailableError("down for the test")
        count = len(json.loads(body)["ticks"])
        self.batches.append(count)
        return TickBatchResult(received=count, new=count, duplicates=0)


def ticks(n: int, start: int = 0) -> list[SourcedTick]:
    return [
        SourcedTick("s", "EURUSD", 1_700_000_000_000 + i, i, 1.1, 1.2, 0.0, 0, 0.0, 6)
        for i in range(start, start + n)
    ]


async def wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    """Until `condition` holds; a generous bound only so a broken sink fails, not hangs."""

    async def until() -> None:
        while not condition():  # noqa: ASYNC110 - polls state the sink owns
            await asyncio.sleep(0.01)

    await asyncio.wait_for(until(), timeout_s)


async def test_batches_never_exceed_max_batch_and_frames_stay_whole(tmp_path: Path) -> None:
    database = RecordingDatabase()
    sink = TickSink(database, Spool(tmp_path), CollectorRegistry(), max_batch=100)  # type: ignore[arg-type]
    await sink.start()
    futures = [sink.enqueue(ticks(30, i * 30)) for i in range(20)]  # 600 ticks queued at once
    assert set(await asyncio.gather(*futures)) == {"journal"}
    await wait_for(lambda: sum(database.batches) == 600)
    await sink.stop()
    assert sum(database.batches) == 600
    assert max(database.batches) <= 100
    assert all(size % 30 == 0 for size in database.batches)  # no frame split across batches


async def test_an_ack_waits_only_for_the_journal_never_for_database_service(
    tmp_path: Path,
) -> None:
    database = RecordingDatabase(available=False)
    sink = TickSink(database, Spool(tmp_path), CollectorRegistry(), max_batch=100, retry_s=0.01)  # type: ignore[arg-type]
    await sink.start()
    assert await sink.enqueue(ticks(10)) == "journal"
    assert await sink.enqueue(ticks(10, 10)) == "journal"
    await wait_for(lambda: sink.forwarding is Forwarding.RETRYING)
    assert (await sink.health()).status.value == "degraded"
    assert sum(1 for _ in Spool(tmp_path).pending()) == 2  # on disk, not in memory
    database.available = True
    await wait_for(lambda: sum(database.batches) == 20 and sink.forwarding is Forwarding.CURRENT)
    assert (await sink.health()).status.value == "healthy"
    assert database.batches == [20]  # the backlog went as one batch, in order
    assert await sink.enqueue(ticks(5, 20)) == "journal"
    await wait_for(lambda: sum(database.batches) == 25)
    await sink.stop()


async def test_a_journal_left_by_a_crash_is_delivered_after_restart(tmp_path: Path) -> None:
    down = RecordingDatabase(available=False)
    first = TickSink(down, Spool(tmp_path), CollectorRegistry(), retry_s=0.01, drain_on_stop_s=0)  # type: ignore[arg-type]
    await first.start()
    assert await first.enqueue(ticks(7)) == "journal"
    await first.stop()
    up = RecordingDatabase()
    second = TickSink(up, Spool(tmp_path), CollectorRegistry())  # type: ignore[arg-type]
    await second.start()
    await wait_for(lambda: up.batches == [7])
    await second.stop()
    assert sum(1 for _ in Spool(tmp_path).pending()) == 0


async def test_stop_delivers_what_it_can_before_it_returns(tmp_path: Path) -> None:
    database = RecordingDatabase()
    sink = TickSink(database, Spool(tmp_path), CollectorRegistry())  # type: ignore[arg-type]
    await sink.start()
    futures = [sink.enqueue(ticks(3, i * 3)) for i in range(5)]
    await sink.stop()
    assert set(await asyncio.gather(*futures)) == {"journal"}
    assert sum(database.batches) == 15


def test_the_forwarder_state_machine() -> None:
    for state in Forwarding:
        assert next_forwarding(state, ForwardingEvent.DELIVERED) is Forwarding.CURRENT
        assert next_forwarding(state, ForwardingEvent.UNAVAILABLE) is Forwarding.RETRYING


class _TimedSpool(Spool):
    """A real spool whose fsyncs report a fixed duration, so the histogram's buckets are known."""

    def append(self, payload: bytes) -> float:
        super().append(payload)
        return 0.003


async def test_every_journal_fsync_is_timed_in_its_histogram(tmp_path: Path) -> None:
    database = RecordingDatabase()
    registry = CollectorRegistry()
    sink = TickSink(database, _TimedSpool(tmp_path), registry)  # type: ignore[arg-type]
    await sink.start()
    for i in range(3):  # one at a time: three journal writes, three fsyncs
        assert await sink.enqueue(ticks(2, i * 2)) == "journal"
    await sink.stop()
    name = "aitrading_data_bridge_journal_fsync_seconds"
    assert registry.get_sample_value(f"{name}_count") == 3
    assert registry.get_sample_value(f"{name}_bucket", {"le": "0.002"}) == 0
    assert registry.get_sample_value(f"{name}_bucket", {"le": "0.004"}) == 3
    assert registry.get_sample_value(f"{name}_sum") == pytest.approx(0.009)


def test_the_spool_reports_how_long_its_fsync_took(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path)
    synced: list[int] = []
    clock = iter([100.0, 100.25])  # read before and after the fsync
    monkeypatch.setattr(spool_module.os, "fsync", synced.append)
    monkeypatch.setattr(spool_module.time, "perf_counter", lambda: next(clock))
    assert spool.append(b"{}") == 0.25
    assert len(synced) == 1  # the record's own fsync, timed
