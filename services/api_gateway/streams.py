"""WebSockets through the gateway (subscriber stream, connector ingest): token checked here,
frames relayed both ways.

data-bridge authenticates the stream and enforces entitlements itself (and closes streams a
revoked subscription no longer allows); the gateway refuses an invalid token before opening
anything upstream, then relays frames and close codes unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl

import msgspec
import websockets
from fastapi import WebSocket, WebSocketDisconnect

from aitrading.core.security.jwt_manager import JWTManager, RejectReason, TokenRejectedError
from aitrading.core.security.scopes import TokenScope, has_scope
from aitrading.services.common.websocket_frames import receive_frame

AUTH_TIMEOUT_S = 10.0


class _FirstFrame(msgspec.Struct):
    """What the gateway reads of the auth frame (data-bridge validates the rest)."""

    token: str


_first_frame = msgspec.json.Decoder(_FirstFrame)


async def proxy_stream(
    ws: WebSocket,
    jwt: JWTManager,
    bridge_url: str,
    path: str = "/api/v1/stream",
    required_scope: TokenScope | None = None,
    tls: ssl.SSLContext | None = None,
) -> None:
    await ws.accept()
    try:
        first = await receive_frame(ws, AUTH_TIMEOUT_S)  # text or binary
        token = _first_frame.decode(first).token
        claims = await jwt.verify(token)
        if required_scope is not None and not has_scope(claims, required_scope):
            raise TokenRejectedError(RejectReason.WRONG_TYPE, f"needs {required_scope} scope")
    except WebSocketDisconnect:
        return
    except (TimeoutError, RecursionError, msgspec.MsgspecError, TokenRejectedError):
        with contextlib.suppress(Exception):
            await ws.send_text(
                json.dumps(
                    {
                        "type": "error",
                        "code": "unauthenticated",
                        "message": "authenticate with a valid token first",
                    }
                )
            )
            await ws.close(code=4401)
        return
    target = bridge_url.replace("http://", "ws://").replace("https://", "wss://")
    try:
        upstream = await websockets.connect(
            f"{target}{path}",
            compression=None,
            max_size=8 * 1024 * 1024,
            ssl=tls if target.startswith("wss://") else None,  # wss://: the stack's CA, TLS 1.3
        )
    except OSError:
        await ws.close(code=1013, reason="data-bridge unavailable")
        return
    await upstream.send(first)

    async def down() -> None:
        async for message in upstream:
            if isinstance(message, bytes):
                await ws.send_bytes(message)
            else:
                await ws.send_text(message)

    async def up() -> None:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            await upstream.send(message.get("text") or message.get("bytes") or "")

    tasks = [asyncio.create_task(down()), asyncio.create_task(up())]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        task.cancel()
    code = upstream.close_code or 1000
    with contextlib.suppress(Exception):
        await upstream.close()
    with contextlib.suppress(Exception):
        await ws.close(code=code)
