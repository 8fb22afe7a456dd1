"""Receiving WebSocket frames the way the protocol allows them: text or binary.

`WebSocket.receive_text()` raises a KeyError on a binary frame, which dropped the socket with
1006 and a traceback; every endpoint reads frames through `receive_frame` instead and hands
the bytes to a decoder that refuses what is not JSON with an error frame.
"""

from __future__ import annotations

import asyncio

from fastapi import WebSocket, WebSocketDisconnect


async def receive_frame(ws: WebSocket, timeout_s: float | None = None) -> str | bytes:
    """The next text or binary frame; `WebSocketDisconnect` when the peer went away,
    `TimeoutError` after `timeout_s`."""
    receiving = ws.receive()
    message = await (asyncio.wait_for(receiving, timeout_s) if timeout_s else receiving)
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(int(message.get("code") or 1000))
    text = message.get("text")
    if text is not None:
        return str(text)
    return bytes(message.get("bytes") or b"")
