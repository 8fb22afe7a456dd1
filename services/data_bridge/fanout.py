"""Live ticks through the Redis-protocol store: latest per symbol, a capped stream, pub/sub.

`publish` runs as soon as ticks are validated (before they are durable: live data is about
now). One pipeline writes the latest tick of each symbol into a hash, appends to a capped
stream for late joiners, and publishes the batch on one channel. Every bridge replica runs
one `LiveFeed` listener that hands ticks to its local subscribers by symbol — a slow
subscriber loses its oldest queued ticks, never the feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
_decode_batch = msgspec.json.Decoder(list[SourcedTick]).decode


class FanOut(Worker):
    """Publishes live ticks. `offer` never waits: a background task coalesces what arrives
    while the previous pipeline is in flight into the next one, so a connector sending one
    tick per frame costs one Redis round trip per *burst*, not per frame. A hub component."""

    def __init__(
        self, redis: aioredis.Redis, stream_maxlen: int = 100_000, max_buffered: int = 100_000
    ) -> None:
        super().__init__("fan-out")
        self._redis = redis
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
        payload = _encode(ticks)
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
    """This replica's one Redis subscription, dispatched to local subscribers by symbol."""

    def __init__(self, redis: aioredis.Redis) -> None:
        super().__init__("live-feed", redis, CHANNEL)
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
            ticks = _decode_batch(data)
        except msgspec.MsgspecError:
            _log.warning("ignoring a malformed live-feed message")
            return
        self._dispatch(ticks)

    def _dispatch(self, ticks: list[SourcedTick]) -> None:
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
