"""Live ticks through the Redis-protocol store: latest per symbol, a capped stream, pub/sub.

`FanOut.offer` runs as soon as ticks are validated (before they are durable: live data is
about now). The replica that took the ticks hands them to its own subscribers at once; then one
pipeline writes the latest tick of each symbol into a hash, appends to a capped stream for late
joiners, and publishes the batch on one channel, stamped with the replica's origin. Every
bridge replica runs one `LiveFeed` listener that hands the *other* replicas' batches to its
local subscribers by symbol and skips its own: those were delivered already, without the round
trip through Redis and back. A slow subscriber loses its oldest queued ticks, never the feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import msgspec
import redis.asyncio as aioredis

from aitrading.core.infrastructure.background import Worker
from aitrading.core.infrastructure.central_hub import Health
from aitrading.core.infrastructure.channel_listener import ChannelListener
from aitrading.core.market.ticks import SourcedTick

LATEST = "aitrading:ticks:latest"
STREAM = "aitrading:ticks:stream"
CHANNEL = "aitrading:ticks:live"

_log = logging.getLogger(__name__)
_encode = msgspec.json.Encoder().encode


class LiveBatch(msgspec.Struct):
    """What goes on the channel and the stream: the publishing replica and its ticks."""

    origin: str
    ticks: list[SourcedTick]


class _LiveBatchHead(msgspec.Struct):
    """The same message with its ticks left unparsed: a replica's own batches are skipped
    after reading the origin only."""

    origin: str
    ticks: msgspec.Raw


_decode_head = msgspec.json.Decoder(_LiveBatchHead).decode
_decode_ticks = msgspec.json.Decoder(list[SourcedTick]).decode


class FanOut(Worker):
    """Publishes live ticks. `offer` never waits: a background task coalesces what arrives
    while the previous pipeline is in flight into the next one, so a connector sending one
    tick per frame costs one Redis round trip per *burst*, not per frame. A hub component."""

    def __init__(
        self,
        redis: aioredis.Redis,
        feed: LiveFeed,
        stream_maxlen: int = 100_000,
        max_buffered: int = 100_000,
    ) -> None:
        super().__init__("fan-out")
        self._redis = redis
        self._feed = feed
        self._maxlen = stream_maxlen
        self._buffer: list[SourcedTick] = []
        self._max_buffered = max_buffered
        self._wake = asyncio.Event()
        self.dropped = 0
        self._failing = ""

    async def start(self) -> None:
        self._loop.start(self._run())

    async def stop(self) -> None:
        await self._loop.stop()

    def offer(self, ticks: list[SourcedTick]) -> None:
        self._feed.dispatch(ticks)  # this replica's subscribers: now, whatever Redis does
        if len(self._buffer) + len(ticks) > self._max_buffered:
            self.dropped += len(ticks)  # live data is about now: shed load, never block ingest
            return
        self._buffer.extend(ticks)
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._buffer = self._buffer, []
            if not batch:
                continue
            try:
                await self.publish(batch)
            except Exception as exc:  # Redis down: live data is lost, storage is not affected
                self._failing = type(exc).__name__
                _log.warning("live fan-out failed: %s", self._failing)
            else:
                self._failing = ""

    async def health(self) -> Health:
        if self._failing and self._loop.running:
            return Health.degraded(f"live ticks not published ({self._failing}); storage is not")
        return self._loop.health()

    async def publish(self, ticks: list[SourcedTick]) -> None:
        latest: dict[str, bytes] = {t.symbol: _encode(t) for t in ticks}
        payload = _encode(LiveBatch(self._feed.origin, ticks))
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(LATEST, mapping=latest)  # type: ignore[arg-type]
            pipe.xadd(STREAM, {"ticks": payload}, maxlen=self._maxlen, approximate=True)
            pipe.publish(CHANNEL, payload)
            await pipe.execute()

    async def latest(self, symbols: Iterable[str]) -> list[SourcedTick]:
        names = list(symbols)
        if not names:
            return []
        values = await self._redis.hmget(LATEST, names)
        decode = msgspec.json.Decoder(SourcedTick).decode
        return [decode(v) for v in values if v is not None]


class Subscriber:
    """One stream client's queue and the symbols it may see."""

    def __init__(self, user: str, symbols: set[str], queue_size: int = 10_000) -> None:
        self.user = user
        self.symbols = symbols
        self.queue: asyncio.Queue[list[SourcedTick]] = asyncio.Queue(maxsize=queue_size)
        self.dropped = 0

    def offer(self, ticks: list[SourcedTick]) -> None:
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
                self.dropped += 1
        self.queue.put_nowait(ticks)


class LiveFeed(ChannelListener):
    """This replica's local subscribers by symbol, and its one Redis subscription, which
    brings them the ticks the other replicas took."""

    def __init__(self, redis: aioredis.Redis) -> None:
        super().__init__("live-feed", redis, CHANNEL)
        self.origin = secrets.token_hex(8)  # this replica, for this process's life
        self._by_symbol: dict[str, set[Subscriber]] = defaultdict(set)

    def add(self, subscriber: Subscriber) -> None:
        for symbol in subscriber.symbols:
            self._by_symbol[symbol].add(subscriber)

    def remove(self, subscriber: Subscriber, symbols: Iterable[str] | None = None) -> None:
        for symbol in list(subscriber.symbols if symbols is None else symbols):
            self._by_symbol[symbol].discard(subscriber)
            if not self._by_symbol[symbol]:
                del self._by_symbol[symbol]

    def subscribers(self) -> set[Subscriber]:
        return {s for group in self._by_symbol.values() for s in group}

    async def on_message(self, data: Any) -> None:
        if not self._by_symbol:  # nobody watches here: a batch nobody reads is not decoded
            return
        try:
            head = _decode_head(data)
            if head.origin == self.origin:
                return  # taken by this replica: its subscribers have it already
            ticks = _decode_ticks(head.ticks)
        except msgspec.MsgspecError:
            _log.warning("ignoring a malformed live-feed message")
            return
        self.dispatch(ticks)

    def dispatch(self, ticks: list[SourcedTick]) -> None:
        """Hand `ticks` to this replica's subscribers of their symbols; never waits."""
        if not self._by_symbol:
            return
        per_subscriber: dict[Subscriber, list[SourcedTick]] = {}
        for tick in ticks:
            for subscriber in self._by_symbol.get(tick.symbol, ()):
                per_subscriber.setdefault(subscriber, []).append(tick)
        for subscriber, selected in per_subscriber.items():
            subscriber.offer(selected)


def tick_message(ticks: list[SourcedTick]) -> bytes:
    return _encode({"type": "ticks", "ticks": ticks})


def as_json(value: Any) -> bytes:
    return _encode(value)
