"""The HTTP client one service holds to another: bounded connect time, keep-alive, and the
stack's trust (`verify`: the stack CA and TLS 1.3 for https:// peers)."""

from __future__ import annotations

import ssl

import httpx


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
