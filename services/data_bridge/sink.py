"""From validated ticks to durable storage: batching, database-service, the spool, replay.

Connections hand ticks to `TickSink.submit` and wait for the answer before acking. The sink
gathers what arrives within a couple of milliseconds (or up to `max_batch` ticks) into one
`POST /api/v1/ticks/batch`. If database-service cannot take it, the batch goes to the spool
(fsync) instead — either way the caller learns the ticks are durable. While the spool holds a
backlog, new batches are spooled too, so that delivery order is arrival order; the replayer
drains the spool whenever database-service answers again. Ticks database-service refuses
are dead-lettered one by one (`delivery.py`), never dropped with their batch and never
resent forever.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
from dataclasses import dataclass, field
from typing import Literal

import msgspec
from prometheus_client import CollectorRegistry, Counter, Gauge

from aitrading.core.infrastructure.central_hub import Health
from aitrading.services.data_bridge.delivery import BatchDelivery
from aitrading.services.data_bridge.spool import Spool
from aitrading.services.database_service.client import (
    DatabaseServiceClient,
    DatabaseServiceUnavailableError,
)

_log = logging.getLogger(__name__)

Durability = Literal["stored", "spooled"]


class StoredTick(msgspec.Struct, array_like=False):
    """A tick as database-service takes it: the connector's tick plus its source."""

    source: str
    symbol: str
    time_msc: int
    sequence: int
    bid: float
    ask: float
    last: float
    volume: int
    volume_real: float
    flags: int


class TickBatchBody(msgspec.Struct):
    ticks: list[StoredTick]


_encode = msgspec.json.Encoder().encode


@dataclass
class _Pending:
    ticks: list[StoredTick] = field(default_factory=list)
    waiters: list[asyncio.Future[Durability]] = field(default_factory=list)


@dataclass
class _Queued:
    ticks: list[StoredTick]
    future: asyncio.Future[Durability]


class TickSink:
    def __init__(
        self,
        database: DatabaseServiceClient,
        spool: Spool,
        registry: CollectorRegistry,
        max_batch: int = 10_000,
        max_delay_s: float = 0.002,
        retry_s: float = 0.5,
    ) -> None:
        self._db = database
        self._spool = spool
        self._max_batch = max_batch
        self._max_delay = max_delay_s
        self._retry_s = retry_s
        self._queue: collections.deque[_Queued] = collections.deque()
        self._queued_ticks = 0
        self._arrived = asyncio.Event()
        self._full = asyncio.Event()
        self._spooled = asyncio.Event()
        self._backlog = False
        self._appends = 0  # spool appends so far; lets the replayer see appends it raced with
        self._tasks: list[asyncio.Task[None]] = []
        self._last_error = ""
        self.stored_ticks = Counter(
            "aitrading_data_bridge_ticks_stored",
            "Ticks made durable, by where",
            ["durability"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "aitrading_data_bridge_ticks_dead_lettered",
            "Acked ticks that database-service refused, kept as dead letters",
            registry=registry,
        )
        self._delivery = BatchDelivery(database, self.dead_lettered)
        self.backlog_gauge = Gauge(
            "aitrading_data_bridge_spool_backlog_bytes",
            "Bytes in the spool not yet delivered",
            registry=registry,
        )

    async def start(self) -> None:
        self._backlog = await asyncio.to_thread(self._spool.backlog_bytes) > 0
        if self._backlog:
            self._spooled.set()
        self._tasks = [
            asyncio.create_task(self._flush_loop(), name="sink-flush"),
            asyncio.create_task(self._replay_loop(), name="sink-replay"),
        ]

    async def stop(self) -> None:
        while self._queue:
            await self._flush_now()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._spool.close()

    def enqueue(self, ticks: list[StoredTick]) -> asyncio.Future[Durability]:
        """Queue `ticks`; the future resolves once they are stored or spooled — only then may
        they be acked. Callers keep reading frames meanwhile (acks are pipelined)."""
        future: asyncio.Future[Durability] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(ticks, future))
        self._queued_ticks += len(ticks)
        self._arrived.set()
        if self._queued_ticks >= self._max_batch:
            self._full.set()
        return future

    def health(self) -> Health:
        if self._backlog:
            return Health.degraded(
                f"database-service unavailable ({self._last_error}); acking from the spool"
            )
        return Health.healthy("storing through database-service")

    async def _flush_loop(self) -> None:
        while True:
            await self._arrived.wait()
            # Gather for up to max_delay, or less when a full batch is already waiting.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), self._max_delay)
            while self._queue:  # a backlog is sent as several batches of at most max_batch
                await self._flush_now()

    def _take_batch(self) -> _Pending:
        """Whole frames from the front of the queue, up to `max_batch` ticks (at least one)."""
        batch = _Pending()
        while self._queue and (
            not batch.waiters or len(batch.ticks) + len(self._queue[0].ticks) <= self._max_batch
        ):
            item = self._queue.popleft()
            self._queued_ticks -= len(item.ticks)
            batch.ticks.extend(item.ticks)
            batch.waiters.append(item.future)
        if not self._queue:
            self._arrived.clear()
        if self._queued_ticks < self._max_batch:
            self._full.clear()
        return batch

    async def _flush_now(self) -> None:
        batch = self._take_batch()
        if not batch.waiters:
            return
        body = _encode(TickBatchBody(batch.ticks))
        durability: Durability = "stored"
        try:
            if self._backlog:
                raise DatabaseServiceUnavailableError("spool backlog is draining")
            await self._delivery.store(body)  # refused ticks become dead letters
        except DatabaseServiceUnavailableError as exc:
            self._last_error = str(exc)
            try:
                await asyncio.to_thread(self._spool.append, body)
            except OSError as disk:
                self._fail(batch, disk)
                return
            durability = "spooled"
            self._appends += 1
            self._backlog = True
            self._spooled.set()
        self.stored_ticks.labels(durability).inc(len(batch.ticks))
        for waiter in batch.waiters:
            if not waiter.done():
                waiter.set_result(durability)

    def _fail(self, batch: _Pending, exc: BaseException) -> None:
        for waiter in batch.waiters:
            if not waiter.done():
                waiter.set_exception(exc)

    async def _replay_loop(self) -> None:
        while True:
            await self._spooled.wait()
            appends_before = self._appends
            delivered = await self._replay_once()
            if delivered and self._appends == appends_before:
                self._spooled.clear()
                self._backlog = False
                self.backlog_gauge.set(0)
            elif not delivered:
                self.backlog_gauge.set(await asyncio.to_thread(self._spool.backlog_bytes))
                await asyncio.sleep(self._retry_s)

    async def _replay_once(self) -> bool:
        """Send every spooled batch in order; False if database-service went away meanwhile."""
        records = self._spool.pending()
        while True:  # read a few records at a time: a backlog can be far larger than memory
            chunk = await asyncio.to_thread(lambda: list(itertools.islice(records, 64)))
            if not chunk:
                break
            for position, body in chunk:
                try:  # item by item on refusal: one bad tick never drops the batch
                    await self._delivery.store(body)
                except DatabaseServiceUnavailableError as exc:
                    self._last_error = str(exc)
                    return False
                await asyncio.to_thread(self._spool.commit, position)
        return True
