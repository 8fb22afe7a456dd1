"""Small pieces of the tick path with no visible effect of their own: the insert's
deduplication token, the bridge's frame counter, and which live-feed messages a replica decodes."""

from __future__ import annotations

import logging

import msgspec
import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from aitrading.core.market.ticks import SourcedTick
from aitrading.services.data_bridge.fanout import LiveBatch, LiveFeed, Subscriber
from aitrading.services.data_bridge.ingest import IngestMetrics
from aitrading.services.database_service.ticks import deduplication_token, storage_columns


def ticks(*sequences: int, bid: float = 1.1) -> list[SourcedTick]:
    return [
        SourcedTick("conn", "EURUSD", 1_700_000_000_000 + s, s, bid, bid + 0.0002)
        for s in sequences
    ]


def test_the_token_depends_on_the_identities_only() -> None:
    token = deduplication_token(storage_columns(ticks(1, 2, 3)))
    assert deduplication_token(storage_columns(ticks(1, 2, 3))) == token  # built anew
    assert deduplication_token(storage_columns(ticks(1, 2, 3, bid=1.3))) == token
    assert deduplication_token(storage_columns(ticks(1, 2, 4))) != token
    assert deduplication_token(storage_columns(ticks(1, 2))) != token


def test_the_columns_are_the_ticks_transposed() -> None:
    columns = storage_columns(ticks(5, 6))
    assert columns[:4] == [
        ["conn", "conn"],
        ["EURUSD", "EURUSD"],
        [1_700_000_000_005, 1_700_000_000_006],
        [5, 6],
    ]


def test_frames_are_counted_per_kind() -> None:
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry)
    for kind in ("TickFrame", "TickFrame", "Heartbeat", "TickFrame"):
        metrics.frame(kind)

    def counted(kind: str) -> float | None:
        return registry.get_sample_value("aitrading_data_bridge_frames_total", {"type": kind})

    assert (counted("TickFrame"), counted("Heartbeat"), counted("TicksFrame")) == (3.0, 1.0, None)


def _message(origin: str, batch: list[SourcedTick]) -> bytes:
    return msgspec.json.encode(LiveBatch(origin, batch))


async def test_a_replica_decodes_the_others_batches_for_its_subscribers_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # never connected: messages are handed in directly
    feed = LiveFeed(aioredis.from_url("redis://127.0.0.1:1"))
    caplog.set_level(logging.WARNING)
    await feed.on_message(b"not json")  # nobody watches here: not even decoded
    assert "malformed" not in caplog.text
    watcher = Subscriber("user", {"EURUSD"})
    feed.add(watcher)
    await feed.on_message(_message(feed.origin, ticks(1)))  # its own: delivered already
    assert watcher.queue.empty()
    await feed.on_message(_message("other-replica", ticks(2)))
    assert [t.sequence for t in watcher.queue.get_nowait()] == [2]
    await feed.on_message(b"not json")
    assert "malformed" in caplog.text
    feed.dispatch(ticks(3))  # what this replica took itself
    assert [t.sequence for t in watcher.queue.get_nowait()] == [3]


def test_ticks_stay_out_of_the_garbage_collector() -> None:
    """Only strings and numbers: never in a cycle, so never worth tracking."""
    import gc

    from aitrading.core.market.ticks import Tick

    assert not gc.is_tracked(ticks(1)[0])
    assert not gc.is_tracked(Tick("EURUSD", 1, 1, 1.1, 1.2))


def test_a_replica_hands_its_own_ticks_to_its_subscribers_without_redis() -> None:
    """`offer` delivers locally before anything is published: with no Redis at all (the
    fan-out never started, the client never connected), the subscriber has the ticks."""
    from aitrading.services.data_bridge.fanout import FanOut

    feed = LiveFeed(aioredis.from_url("redis://127.0.0.1:1"))  # nothing listens there
    watcher = Subscriber("user", {"EURUSD"})
    feed.add(watcher)
    FanOut(aioredis.Redis(port=1), feed).offer(ticks(7, 8))
    assert [t.sequence for t in watcher.queue.get_nowait()] == [7, 8]
