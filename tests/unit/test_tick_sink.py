"""TickSink batching and durability decisions, with a recording stand-in for database-service."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from prometheus_client import CollectorRegistry

from aitrading.services.data_bridge.sink import StoredTick, TickSink
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


def ticks(n: int, start: int = 0) -> list[StoredTick]:
    return [
        StoredTick("s", "EURUSD", 1_700_000_000_000 + i, i, 1.1, 1.2, 0.0, 0, 0.0, 6)
        for i in range(start, start + n)
    ]


async def test_batches_never_exceed_max_batch_and_frames_stay_whole(tmp_path: Path) -> None:
    database = RecordingDatabase()
    sink = TickSink(database, Spool(tmp_path), CollectorRegistry(), max_batch=100)  # type: ignore[arg-type]
    await sink.start()
    futures = [sink.enqueue(ticks(30, i * 30)) for i in range(20)]  # 600 ticks queued at once
    assert set(await asyncio.gather(*futures)) == {"stored"}
    await sink.stop()
    assert sum(database.batches) == 600
    assert max(database.batches) <= 100
    assert all(size % 30 == 0 for size in database.batches)  # no frame split across batches


async def test_unavailable_database_spools_then_replays_in_order(tmp_path: Path) -> None:
    database = RecordingDatabase(available=False)
    sink = TickSink(database, Spool(tmp_path), CollectorRegistry(), max_batch=100, retry_s=0.01)  # type: ignore[arg-type]
    await sink.start()
    assert await sink.enqueue(ticks(10)) == "spooled"
    assert await sink.enqueue(ticks(10, 10)) == "spooled"
    assert sink.health().status.value == "degraded"
    database.available = True
    for _ in range(500):
        if sum(database.batches) == 20 and sink.health().status.value == "healthy":
            break
        await asyncio.sleep(0.01)
    assert database.batches == [10, 10]
    assert await sink.enqueue(ticks(5, 20)) == "stored"
    await sink.stop()
