"""Subscribers' WebSocket: live ticks of the symbols their plan entitles."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from aitrading.services.data_bridge.deps import Bridge
from aitrading.services.data_bridge.stream import serve_subscriber

router = APIRouter(prefix="/api/v1")


@router.websocket("/stream")
async def stream(ws: WebSocket, bridge: Bridge) -> None:
    """Auth frame first, then subscribe/unsubscribe to entitled symbols."""
    await serve_subscriber(ws, bridge.jwt, bridge.streams, bridge.fanout)
