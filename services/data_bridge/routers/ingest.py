"""MT5 connectors' WebSocket (docs/protocol.md): ticks in, acks and orders out."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from aitrading.services.data_bridge.deps import Bridge
from aitrading.services.data_bridge.ingest import serve_connector

router = APIRouter(prefix="/api/v1")


@router.websocket("/ingest")
async def ingest(ws: WebSocket, bridge: Bridge) -> None:
    """Auth frame first, then tick/ticks/account_info/positions/heartbeat."""
    await serve_connector(ws, bridge.ingest)
