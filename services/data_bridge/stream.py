"""`/api/v1/stream`: live ticks for the symbols a client's subscription entitles it to.

A client authenticates (JWT) in its first frame, then sends `subscribe` frames. Each symbol is
checked against the user's current entitlements; refused ones are named in the answer. The
number of concurrent streams per user is capped by the plan. When a subscription changes
(EntitlementWatcher), every open stream of that user is re-checked at once: symbols it may no
longer see are dropped with a `revoked` frame, and a stream left with none is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from dataclasses import dataclass, field

import msgspec
from fastapi import WebSocket, WebSocketDisconnect

from aitrading.core.market.ticks import SYMBOL_RE
from aitrading.core.security.jwt_manager import JWTManager, TokenRejectedError
from aitrading.core.security.subscription_validator import SubscriptionValidator
from aitrading.services.common.websocket_frames import receive_frame
from aitrading.services.data_bridge.fanout import (
    FanOut,
    LiveFeed,
    Subscriber,
    as_json,
    tick_message,
)

AUTH_TIMEOUT_S = 10.0
MAX_SYMBOLS = 500
CLOSE_FORBIDDEN = 4403


class _Auth(msgspec.Struct, tag="auth"):
    v: int
    token: str


class _Subscribe(msgspec.Struct, tag="subscribe"):
    symbols: list[str]


class _Unsubscribe(msgspec.Struct, tag="unsubscribe"):
    symbols: list[str]


_client_frames = msgspec.json.Decoder(_Auth | _Subscribe | _Unsubscribe)


@dataclass
class StreamRegistry:
    """Open streams per user, for the stream cap and for live revocation."""

    feed: LiveFeed
    validator: SubscriptionValidator
    by_user: dict[str, set[Subscriber]] = field(default_factory=lambda: defaultdict(set))
    sockets: dict[Subscriber, WebSocket] = field(default_factory=dict)

    async def on_change(self, user_id: str, version: int, reason: str) -> None:
        """Re-check every open stream of `user_id` against the new entitlements."""
        streams = list(self.by_user.get(user_id, ()))
        if not streams:
            return
        entitled = (await self.validator.entitlements(user_id)).entitlements
        for subscriber in streams:
            lost = {s for s in subscriber.symbols if not entitled.allows_symbol(s)}
            if not lost:
                continue
            self.feed.remove(subscriber, lost)
            subscriber.symbols -= lost
            ws = self.sockets.get(subscriber)
            if ws is None:
                continue
            with contextlib.suppress(Exception):
                await ws.send_bytes(
                    as_json({"type": "revoked", "symbols": sorted(lost), "reason": reason})
                )
                if not subscriber.symbols:
                    await ws.close(code=CLOSE_FORBIDDEN, reason="subscription no longer allows")


async def serve_subscriber(
    ws: WebSocket, jwt: JWTManager, registry: StreamRegistry, fanout: FanOut
) -> None:
    await ws.accept()
    try:
        first = _client_frames.decode(await receive_frame(ws, AUTH_TIMEOUT_S))
        if not isinstance(first, _Auth):
            raise ValueError("first frame must be auth")
        claims = await jwt.verify(first.token)
    except WebSocketDisconnect:
        return
    except (TimeoutError, ValueError, RecursionError, msgspec.MsgspecError, TokenRejectedError):
        await _close(ws, "unauthenticated", "authenticate with a valid token first", 4401)
        return
    user = str(claims["sub"])
    entitled = (await registry.validator.entitlements(user)).entitlements
    if len(registry.by_user[user]) >= entitled.max_streams:
        await _close(
            ws,
            "too_many_streams",
            f"your plan allows {entitled.max_streams} concurrent stream(s)",
            4429,
        )
        return
    subscriber = Subscriber(user, set())
    registry.by_user[user].add(subscriber)
    registry.sockets[subscriber] = ws
    sender = asyncio.create_task(_pump(ws, subscriber))
    try:
        while True:
            raw = await receive_frame(ws)
            try:
                frame = _client_frames.decode(raw)
            except (msgspec.MsgspecError, RecursionError) as exc:
                await ws.send_bytes(
                    as_json({"type": "error", "code": "malformed", "message": str(exc)})
                )
                continue
            if isinstance(frame, _Subscribe):
                await _subscribe(ws, registry, subscriber, frame.symbols, fanout)
            elif isinstance(frame, _Unsubscribe):
                gone = subscriber.symbols & set(frame.symbols)
                registry.feed.remove(subscriber, gone)
                subscriber.symbols -= gone
                await ws.send_bytes(as_json({"type": "unsubscribed", "symbols": sorted(gone)}))
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        sender.cancel()
        registry.feed.remove(subscriber)
        registry.by_user[user].discard(subscriber)
        registry.sockets.pop(subscriber, None)


async def _subscribe(
    ws: WebSocket,
    registry: StreamRegistry,
    subscriber: Subscriber,
    symbols: list[str],
    fanout: FanOut,
) -> None:
    entitled = (await registry.validator.entitlements(subscriber.user)).entitlements
    wanted = set(symbols[:MAX_SYMBOLS])
    allowed = {s for s in wanted if SYMBOL_RE.fullmatch(s) and entitled.allows_symbol(s)}
    new = allowed - subscriber.symbols
    subscriber.symbols |= allowed
    registry.feed.remove(subscriber)
    registry.feed.add(subscriber)
    await ws.send_bytes(
        as_json(
            {"type": "subscribed", "symbols": sorted(allowed), "refused": sorted(wanted - allowed)}
        )
    )
    latest = await fanout.latest(new)
    if latest:
        await ws.send_bytes(tick_message(latest))


async def _pump(ws: WebSocket, subscriber: Subscriber) -> None:
    while True:
        ticks = await subscriber.queue.get()
        await ws.send_bytes(tick_message(ticks))


async def _close(ws: WebSocket, code: str, message: str, close_code: int) -> None:
    with contextlib.suppress(Exception):
        await ws.send_bytes(as_json({"type": "error", "code": code, "message": message}))
        await ws.close(code=close_code)
