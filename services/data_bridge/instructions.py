"""Order instructions to one connector connection, and its presence while it is open.

Each connection reads its source's instruction stream from the start (so whatever is still
unanswered after a reconnect is delivered again) and sends every instruction that has not
expired as an `order` frame. The trading-engine removes an instruction once the connector
answered it; the connector executes each order id at most once (docs/protocol.md §5).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from fastapi import WebSocket

from aitrading.core.market.connector_channels import PRESENCE_TTL_S, InstructionQueue, Presence
from aitrading.services.data_bridge import protocol

_log = logging.getLogger(__name__)
BLOCK_MS = 1000


async def deliver_instructions(
    ws: WebSocket, source: str, session: str, queue: InstructionQueue, presence: Presence
) -> None:
    """Runs for the life of the connection (cancelled when it closes)."""
    after = "0"
    marked = 0.0
    try:
        while True:
            now = time.monotonic()
            try:
                if now - marked >= PRESENCE_TTL_S / 3:
                    await presence.mark(source, session)
                    marked = now
                for item in await queue.read(source, after, BLOCK_MS):
                    after = item.entry
                    if item.expires_at < time.time():
                        continue  # void: the engine expires the order
                    await ws.send_bytes(protocol.order(item.token))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is away: keep the connection, try again
                _log.warning("instructions for %s not read: %s", source, type(exc).__name__)
                await asyncio.sleep(1.0)
    finally:
        with contextlib.suppress(Exception):
            await presence.unmark(source, session)
