"""A subscriber of the live tick stream (`/api/v1/stream`, docs/protocol.md §4).

What `aitrading ticks watch` uses to show a newcomer the ticks flowing, and what a script can
use to follow a symbol: authenticate with a token in the first frame, subscribe, then yield
each tick as it arrives. Plaintext `ws://` only to loopback; `wss://` verifies the server
(system CAs or the given CA) with TLS 1.3.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from aitrading.core.security.db_security_manager import TlsMaterial, client_context
from aitrading.core.security.tls import is_loopback

PROTOCOL_VERSION = 1


class StreamStoppedError(RuntimeError):
    """The stream refused (a bad token, a plan without the symbols, too many streams) or
    closed; the message says which."""


def stream_url(base: str) -> str:
    """`http(s)://host:port` (the gateway) or a full `ws(s)://…/api/v1/stream`, as a ws URL.

    Refuses plaintext to anything but loopback, like every client here.
    """
    parts = urlsplit(base)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.hostname:
        raise ValueError(f"not a gateway URL: {base!r} (use https://host:port or wss://…)")
    if scheme == "ws" and not is_loopback(parts.hostname):
        raise ValueError("use https:// or wss:// (TLS 1.3); plaintext only to loopback")
    path = parts.path.rstrip("/") or "/api/v1/stream"
    return f"{scheme}://{parts.netloc}{path}"


def _tls(url: str, ca_file: Path | None) -> ssl.SSLContext | None:
    return client_context(TlsMaterial(ca_file=ca_file)) if url.startswith("wss://") else None


async def watch_ticks(
    base: str, token: str, symbols: list[str], ca_file: Path | None = None
) -> AsyncIterator[dict[str, Any]]:
    """Yield every tick of `symbols` as the stream sends it, until the caller stops.

    Raises StreamStoppedError when the stream refuses the token or every symbol, or closes.
    """
    url = stream_url(base)
    async with connect(url, ssl=_tls(url, ca_file), compression=None) as ws:
        await ws.send(json.dumps({"type": "auth", "v": PROTOCOL_VERSION, "token": token}))
        await ws.send(json.dumps({"type": "subscribe", "symbols": symbols}))
        try:
            async for raw in ws:
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "error":
                    raise StreamStoppedError(f"{frame.get('code')}: {frame.get('message')}")
                if kind == "subscribed" and not frame.get("symbols"):
                    refused = ", ".join(frame.get("refused", [])) or "none asked"
                    raise StreamStoppedError(f"no symbol allowed by your plan ({refused})")
                if kind == "ticks":
                    for tick in frame.get("ticks", []):
                        yield tick
        except ConnectionClosed as exc:
            raise StreamStoppedError(f"the stream closed: {exc.rcvd or exc}") from None
        raise StreamStoppedError(f"the stream closed: {ws.close_reason or ws.close_code}")
