"""The HTTP client one service holds to another: bounded connect time, keep-alive, and the
stack's trust (`verify`: the stack CA and TLS 1.3 for https:// peers)."""

from __future__ import annotations

import importlib
import ssl

import httpx

# httpx's connection pool loads anyio's asyncio backend on its first request: 70 to 140 ms of
# imports on the event loop, paid by whatever the service sends first (data-bridge: the first
# ticks forwarded, while every connector link waited for its acks). Loaded with this module,
# before any service is ready. `tests/unit/test_peer_http_imports.py` holds it to that.
importlib.import_module("anyio._backends._asyncio")


def peer_http(
    base_url: str,
    timeout_s: float,
    verify: ssl.SSLContext | bool,
    transport: httpx.AsyncBaseTransport | None = None,
    connections: int = 16,
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout_s, connect=min(2.0, timeout_s)),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        transport=transport,
        verify=verify,
    )
