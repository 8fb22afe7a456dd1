"""What data-bridge's routes depend on: the objects its lifespan builds once the stores are up.

Typed, in one place: the lifespan fills `BridgeState.serving`; a connection that arrives
before that (or after shutdown began) is closed with 1013 "try again later", never served
by half-built objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, WebSocket, WebSocketException, status

from aitrading.core.security.jwt_manager import JWTManager
from aitrading.services.data_bridge.fanout import FanOut
from aitrading.services.data_bridge.ingest import IngestContext
from aitrading.services.data_bridge.stream import StreamRegistry


@dataclass(frozen=True)
class Serving:
    ingest: IngestContext
    jwt: JWTManager
    streams: StreamRegistry
    fanout: FanOut


@dataclass
class BridgeState:
    serving: Serving | None = None


async def serving_of(ws: WebSocket) -> Serving:
    state: BridgeState = ws.app.state.bridge
    if state.serving is None:
        raise WebSocketException(status.WS_1013_TRY_AGAIN_LATER, "data-bridge is starting")
    return state.serving


Bridge = Annotated[Serving, Depends(serving_of)]
