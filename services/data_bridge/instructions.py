"""Order instructions to one connector connection, and its presence while it is open.

Each connection reads its source's instruction stream from the start (so whatever is still
unanswered after a reconnect is delivered again) and sends every instruction that has not
expired as an `order` frame. It reads when this bridge's one subscription to the
notification channel names its source, and every few seconds regardless (a notification
lost while the subscription reconnects costs that much delay, never the instruction). The
trading-engine removes an instruction once the connector answered it; the connector executes
each order id at most once (docs/protocol.md §5).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from typing import Any

import redis.asyncio as aioredis
from fastapi import WebSocket

from aitrading.core.infrastructure.channel_listener import ChannelListener
from aitrading.core.infrastructure.event_wait import wait_event
from aitrading.core.market.connector_channels import (
    NOTIFY,
    PRESENCE_TTL_S,
    InstructionQueue,
    Presence,
)
from aitrading.services.data_bridge import protocol

_log = logging.getLogger(__name__)
SAFETY_POLL_S = 2.0


class InstructionWakeups(ChannelListener):
    """This replica's one subscription to the notification channel, fanned out to the
    connections of the source it names. While it is down, the safety poll covers the gap."""

    def __init__(self, redis: aioredis.Redis) -> None:
        super().__init__("instruction-wakeups", redis, NOTIFY)
        self._waiting: dict[str, set[asyncio.Event]] = defaultdict(set)

    def watch(self, source: str) -> asyncio.Event:
        event = asyncio.Event()
        self._waiting[source].add(event)
        return event

    def unwatch(self, source: str, event: asyncio.Event) -> None:
        self._waiting[source].discard(event)
        if not self._waiting[source]:
            del self._waiting[source]

    async def on_message(self, data: Any) -> None:
        source = data.decode() if isinstance(data, bytes) else str(data)
        for event in self._waiting.get(source, ()):
            event.set()

    def on_resubscribed(self) -> None:
        # a notification in the gap was missed: wake every connection to read its queue
        for events in self._waiting.values():
            for event in events:
                event.set()


async def deliver_instructions(
    ws: WebSocket,
    source: str,
    session: str,
    queue: InstructionQueue,
    presence: Presence,
    wakeups: InstructionWakeups,
) -> None:
    """Runs for the life of the connection (cancelled when it closes)."""
    after = "0"
    marked = 0.0
    wake = wakeups.watch(source)
    try:
        while True:
            wake.clear()
            try:
                now = time.monotonic()
                if now - marked >= PRESENCE_TTL_S / 3:
                    await presence.mark(source, session)
                    marked = now
                for item in await queue.read(source, after):
                    after = item.entry
                    if item.expires_at < time.time():
                        continue  # void: the engine expires the order
                    await ws.send_bytes(protocol.order(item.token))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is away: keep the connection, try again
                _log.warning("instructions for %s not read: %s", source, type(exc).__name__)
            await wait_event(wake, SAFETY_POLL_S)
    finally:
        wakeups.unwatch(source, wake)
        with contextlib.suppress(Exception):
            await presence.unmark(source, session)
