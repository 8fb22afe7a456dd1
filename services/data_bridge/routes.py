"""data-bridge's two WebSocket doors (docs/protocol.md)."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from aitrading.services.data_bridge.deps import Bridge
from aitrading.services.data_bridge.ingest import serve_connector
from aitrading.services.data_bridge.stream import serve_subscriber

router = APIRouter(prefix="/api/v1")


@router.websocket("/ingest")
async def ingest(ws: WebSocket, bridge: Bridge) -> None:
    """MT5 connectors: auth frame first, then tick/ticks/account_info/positions/heartbeat."""
    await serve_connector(ws, bridge.ingest)


@router.websocket("/stream")
async def stream(ws: WebSocket, bridge: Bridge) -> None:
    """Subscribers: auth frame first, then subscribe/unsubscribe to entitled symbols."""
    await serve_subscriber(ws, bridge.jwt, bridge.streams, bridge.fanout)
