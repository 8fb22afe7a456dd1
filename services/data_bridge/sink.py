"""From validated ticks to durable storage: the journal first, database-service behind it.

Connections hand ticks to `TickSink.enqueue` and ack a frame when its future resolves. The
future resolves once the frame is in the bridge's journal (the fsynced spool, on the pod's
persistent volume): that is what an ack promises, and it costs a fraction of a millisecond
instead of a ClickHouse insert (tens of milliseconds, more on a loaded machine). Frames that
arrive while one journal write is under way go into the next (group commit), so the journal
keeps up with any rate the connections can read.

A forwarder delivers the journal to database-service in order, several records per
`POST /api/v1/ticks/batch` (up to `max_batch` ticks), and moves the journal's position after
each success; it lingers `linger_s` (`data_bridge.forward_linger_s`, 1 s) after the first
new record so that ClickHouse gets about one large insert a second (its documentation's
advice: every insert writes a part that background merges must catch up with) rather than one
per frame. Each insert also takes a core of database-service's for a few milliseconds, and on a
machine shared with the connector every insert showed in the ack latency's tail. Lingering 1 s
instead of 0.5 s took the connector benchmark's p99 from 6.5, 6.9, 7.2 and 16.1 ms to 5.0, 5.0,
6.1 and 6.3 ms in interleaved runs (docs/performance.md).
database-service stores ticks idempotently by identity, so a record sent twice (a crash between
delivery and the position's fsync) lands once. Ticks it refuses are dead-lettered one by one
(`delivery.py`), never dropped with their batch and never resent forever. While
database-service is unavailable the forwarder retries and the journal grows; acks do not
change.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import itertools
import logging
from dataclasses import dataclass, field
from typing import Literal

import msgspec
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from aitrading.core.infrastructure.central_hub import Health
from aitrading.core.market.ticks import SourcedTick
from aitrading.services.data_bridge.delivery import BatchDelivery
from aitrading.services.data_bridge.spool import Position, Spool
from aitrading.services.database_service.client import (
    DatabaseServiceClient,
    DatabaseServiceUnavailableError,
)

_log = logging.getLogger(__name__)

Durability = Literal["journal"]
JOURNALED: Durability = "journal"


class TickBatchBody(msgspec.Struct):
    ticks: list[SourcedTick]


class _RawTicks(msgspec.Struct):
    ticks: list[msgspec.Raw]


_encode = msgspec.json.Encoder().encode
_decode_raw = msgspec.json.Decoder(_RawTicks).decode
_CHUNK = 64  # journal records read per worker-thread call
# From half a millisecond (an idle SSD) to a second (a disk in trouble), doubling: the shape of
# etcd's WAL fsync histogram, whose tail is likewise the tail of every write it acknowledges.
JOURNAL_FSYNC_BUCKETS_S = tuple(round(0.0005 * 2**i, 4) for i in range(12))  # 0.5 ms to 1.024 s


class Forwarding(enum.Enum):
    """Where the forwarder stands with database-service."""

    CURRENT = "current"  # the journal is delivered as fast as it fills
    RETRYING = "retrying"  # database-service is unavailable; the journal grows meanwhile


class ForwardingEvent(enum.Enum):
    DELIVERED = "delivered"  # everything journaled so far reached database-service
    UNAVAILABLE = "unavailable"  # a delivery failed; retry later


def next_forwarding(state: Forwarding, event: ForwardingEvent) -> Forwarding:
    """The forwarder's one transition function."""
    del state  # both states answer each event the same way; kept for the explicit signature
    return Forwarding.CURRENT if event is ForwardingEvent.DELIVERED else Forwarding.RETRYING


@dataclass
class _Pending:
    ticks: list[SourcedTick] = field(default_factory=list)
    waiters: list[asyncio.Future[Durability]] = field(default_factory=list)


@dataclass
class _Queued:
    ticks: list[SourcedTick]
    future: asyncio.Future[Durability]


class TickSink:
    """A hub component ("storage"): degraded while database-service cannot take the journal,
    never failing readiness (acked ticks are safe in the journal meanwhile)."""

    name = "storage"
    depends_on: tuple[str, ...] = ()
    critical = False

    def __init__(
        self,
        database: DatabaseServiceClient,
        spool: Spool,
        registry: CollectorRegistry,
        max_batch: int = 10_000,
        retry_s: float = 0.5,
        drain_on_stop_s: float = 10.0,
        linger_s: float = 1.0,
    ) -> None:
        self._db = database
        self._spool = spool
        self._max_batch = max_batch
        self._retry_s = retry_s
        self._drain_on_stop_s = drain_on_stop_s
        self._linger_s = linger_s
        self._queue: collections.deque[_Queued] = collections.deque()
        self._arrived = asyncio.Event()
        self._journaled = asyncio.Event()
        # set when the forwarder has nothing it can do now: all delivered, or retrying later
        self._settled = asyncio.Event()
        self._state = Forwarding.CURRENT
        self._tasks: list[asyncio.Task[None]] = []
        self._last_error = ""
        self.journaled_ticks = Counter(
            "aitrading_data_bridge_ticks_journaled",
            "Ticks made durable in the bridge's journal (what an ack promises)",
            registry=registry,
        )
        self.delivered_ticks = Counter(
            "aitrading_data_bridge_ticks_delivered",
            "Journaled ticks database-service has taken (stored or dead-lettered)",
            registry=registry,
        )
        self.dead_lettered = Counter(
            "aitrading_data_bridge_ticks_dead_lettered",
            "Acked ticks that database-service refused, kept as dead letters",
            registry=registry,
        )
        self._delivery = BatchDelivery(database, self.dead_lettered)
        self.journal_fsync_seconds = Histogram(
            "aitrading_data_bridge_journal_fsync_seconds",
            "How long each fsync of the journal took: every ack waits for one",
            buckets=JOURNAL_FSYNC_BUCKETS_S,
            registry=registry,
        )
        self.backlog_gauge = Gauge(
            "aitrading_data_bridge_spool_backlog_bytes",
            "Bytes in the journal not yet delivered to database-service",
            registry=registry,
        )

    @property
    def forwarding(self) -> Forwarding:
        return self._state

    async def start(self) -> None:
        if await asyncio.to_thread(self._spool.backlog_bytes) > 0:
            self._journaled.set()  # a backlog from before a restart: deliver it first
        else:
            self._settled.set()
        self._tasks = [
            asyncio.create_task(self._journal_loop(), name="sink-journal"),
            asyncio.create_task(self._forward_loop(), name="sink-forward"),
        ]

    async def stop(self) -> None:
        """Journal what is queued, give the forwarder a bounded time to catch up, stop.

        Whatever is still undelivered stays in the journal and goes first after a restart."""
        while self._queue:
            await self._journal_now()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._settled.wait(), self._drain_on_stop_s)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._spool.close()

    def enqueue(self, ticks: list[SourcedTick]) -> asyncio.Future[Durability]:
        """Queue `ticks`; the future resolves once they are in the journal — only then may
        they be acked. Callers keep reading frames meanwhile (acks are pipelined)."""
        future: asyncio.Future[Durability] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(ticks, future))
        self._arrived.set()
        return future

    async def health(self) -> Health:
        if self._state is Forwarding.RETRYING:
            return Health.degraded(
                f"database-service unavailable ({self._last_error}); acked ticks wait in the "
                "journal"
            )
        return Health.healthy("journaling and delivering to database-service")

    async def _journal_loop(self) -> None:
        while True:
            await self._arrived.wait()
            while self._queue:  # what arrived during the last write goes into the next one
                await self._journal_now()

    def _take_batch(self) -> _Pending:
        """Whole frames from the front of the queue, up to `max_batch` ticks (at least one)."""
        batch = _Pending()
        while self._queue and (
            not batch.waiters or len(batch.ticks) + len(self._queue[0].ticks) <= self._max_batch
        ):
            item = self._queue.popleft()
            batch.ticks.extend(item.ticks)
            batch.waiters.append(item.future)
        if not self._queue:
            self._arrived.clear()
        return batch

    async def _journal_now(self) -> None:
        batch = self._take_batch()
        if not batch.waiters:
            return
        body = _encode(TickBatchBody(batch.ticks))
        try:
            synced_in_s = await asyncio.to_thread(self._spool.append, body)
        except OSError as disk:  # full or failing volume: no ack; the connector resends
            for waiter in batch.waiters:
                if not waiter.done():
                    waiter.set_exception(disk)
            return
        self.journal_fsync_seconds.observe(synced_in_s)
        self.journaled_ticks.inc(len(batch.ticks))
        self._settled.clear()
        self._journaled.set()
        for waiter in batch.waiters:
            if not waiter.done():
                waiter.set_result(JOURNALED)

    async def _forward_loop(self) -> None:
        while True:
            await self._journaled.wait()
            # Acks do not wait for this, so let records gather: a few large ClickHouse
            # inserts a second instead of one per frame (each costs ~10 ms of CPU in chdb;
            # at 50 ms the inserts' CPU tripled the connector's ack latency on 2 cores).
            await asyncio.sleep(self._linger_s)
            self._journaled.clear()  # an append after this line sets it again
            delivered = await self._forward_once()
            self._state = next_forwarding(
                self._state,
                ForwardingEvent.DELIVERED if delivered else ForwardingEvent.UNAVAILABLE,
            )
            if not delivered:
                self._journaled.set()
                self._settled.set()
                self.backlog_gauge.set(await asyncio.to_thread(self._spool.backlog_bytes))
                await asyncio.sleep(self._retry_s)
            elif not self._journaled.is_set():
                self.backlog_gauge.set(0)
                self._settled.set()

    async def _forward_once(self) -> bool:
        """Deliver the journal in order, in batches of whole records up to `max_batch` ticks;
        False if database-service went away meanwhile."""
        records = self._spool.pending()
        batch: list[msgspec.Raw] = []
        position: Position | None = None
        while True:  # a few records at a time: a backlog can be far larger than memory
            chunk = await asyncio.to_thread(lambda: list(itertools.islice(records, _CHUNK)))
            for after, body in chunk:
                ticks = _decode_raw(body).ticks
                if batch and len(batch) + len(ticks) > self._max_batch:
                    if not await self._deliver(batch, position):
                        return False
                    batch = []
                batch.extend(ticks)
                position = after
            if len(chunk) < _CHUNK:  # the journal's end, as far as it was written
                return await self._deliver(batch, position)

    async def _deliver(self, ticks: list[msgspec.Raw], position: Position | None) -> bool:
        if position is None or not ticks:
            return True
        try:  # item by item on refusal: one bad tick never drops the batch
            await self._delivery.store(_encode({"ticks": ticks}))
        except DatabaseServiceUnavailableError as exc:
            self._last_error = str(exc)
            return False
        await asyncio.to_thread(self._spool.commit, position)
        self.delivered_ticks.inc(len(ticks))
        return True
