"""The two WebSockets, proxied to data-bridge once the gateway checked the token itself."""

from __future__ import annotations

import ssl

from fastapi import APIRouter, WebSocket

from aitrading.core.security.scopes import TokenScope
from aitrading.services.api_gateway.deps import Gateway, Stores
from aitrading.services.api_gateway.streams import proxy_stream

router = APIRouter(prefix="/api/v1")


def _tls(gateway: Gateway) -> ssl.SSLContext | None:
    tls = gateway.upstreams.tls
    return tls if isinstance(tls, ssl.SSLContext) else None


@router.websocket("/stream")
async def stream(ws: WebSocket, gateway: Gateway, stores: Stores) -> None:
    """Live ticks for subscribers."""
    bridge = gateway.upstreams.urls["data-bridge"]
    await proxy_stream(ws, stores.jwt, bridge, tls=_tls(gateway))


@router.websocket("/ingest")
async def ingest(ws: WebSocket, gateway: Gateway, stores: Stores) -> None:
    """MT5 connectors; the token must carry the ingest scope."""
    bridge = gateway.upstreams.urls["data-bridge"]
    await proxy_stream(
        ws,
        stores.jwt,
        bridge,
        "/api/v1/ingest",
        required_scope=TokenScope.INGEST,
        tls=_tls(gateway),
    )
