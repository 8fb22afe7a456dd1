"""One connector connection: authenticate, then read frames, validate, fan out, ack.

Frames are read continuously; each frame's ticks are queued for storage at once and its ack
is sent by a separate task, in frame order, when the storage future resolves. A bad frame gets
an `error` frame naming the reason and its `seq`; nothing of that frame is stored; the
connection stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec
from fastapi import WebSocket, WebSocketDisconnect
from prometheus_client import CollectorRegistry, Counter, Gauge

from aitrading.core.market.connector_channels import InstructionQueue, LatestAccounts, Presence
from aitrading.core.market.ticks import source_problem, sourced
from aitrading.core.security.jwt_manager import JWTManager, TokenRejectedError
from aitrading.core.security.scopes import TokenScope, has_scope
from aitrading.services.common.websocket_frames import receive_frame
from aitrading.services.data_bridge import protocol
from aitrading.services.data_bridge.instructions import InstructionWakeups, deliver_instructions
from aitrading.services.data_bridge.protocol import ProtocolError, Reason
from aitrading.services.data_bridge.sink import Durability, TickSink
from aitrading.services.trading_engine.client import (
    TradingEngineClient,
    TradingEngineRefusedError,
    TradingEngineUnavailableError,
)

if TYPE_CHECKING:
    from aitrading.services.data_bridge.fanout import FanOut

_log = logging.getLogger(__name__)
AUTH_TIMEOUT_S = 10.0
MAX_IN_FLIGHT = 20_000


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.frames = Counter(
            "aitrading_data_bridge_frames", "Frames received by type", ["type"], registry=registry
        )
        self.rejected = Counter(
            "aitrading_data_bridge_rejections",
            "Frames and ticks refused, by reason",
            ["reason"],
            registry=registry,
        )
        self.duplicates = Counter(
            "aitrading_data_bridge_duplicate_ticks",
            "Ticks dropped as already seen",
            registry=registry,
        )
        self.connections = Gauge(
            "aitrading_data_bridge_connections", "Open connector connections", registry=registry
        )
        self._frames_of: dict[str, Counter] = {}

    def frame(self, kind: str) -> None:
        """Count a received frame; each kind's child is looked up once, not per frame."""
        child = self._frames_of.get(kind)
        if child is None:
            child = self._frames_of[kind] = self.frames.labels(kind)
        child.inc()


class RecentIdentities:
    """The last `capacity` tick identities of one source: resends are dropped here first."""

    def __init__(self, capacity: int = 200_000) -> None:
        self._seen: OrderedDict[tuple[str, int, int], None] = OrderedDict()
        self._capacity = capacity

    def forget(self, keys: list[tuple[str, int, int]]) -> None:
        """Un-see ticks that could not be stored, so that their resend is not a 'duplicate'."""
        for key in keys:
            self._seen.pop(key, None)

    def first_time(self, key: tuple[str, int, int]) -> bool:
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return True


@dataclass
class AckItem:
    seq: int
    future: asyncio.Future[Durability] | None
    accepted: int
    duplicates: int
    forget: list[tuple[str, int, int]] | None = None  # identities to un-see on failure


AckQueue = asyncio.Queue["AckItem | None"]


@dataclass
class IngestContext:
    jwt: JWTManager
    sink: TickSink
    fanout: FanOut
    metrics: IngestMetrics
    max_skew_ms: int
    store_account: object  # async callable(bytes) -> None, raising when unavailable
    limits: protocol.FrameLimits = protocol.FrameLimits()  # noqa: RUF009 - frozen, shared
    engine: TradingEngineClient | None = None  # reports and positions go there
    channels: OrderChannels | None = None  # instructions, presence, latest accounts


@dataclass(frozen=True)
class OrderChannels:
    queue: InstructionQueue
    presence: Presence
    accounts: LatestAccounts
    wakeups: InstructionWakeups


async def authenticate(ws: WebSocket, ctx: IngestContext) -> str | None:
    """The connector's source id, or None after telling it why it is refused."""
    try:
        raw = await receive_frame(ws, AUTH_TIMEOUT_S)  # text or binary, as the protocol allows
        frame = protocol.decode(raw, ctx.limits)
    except TimeoutError:
        await _refuse(ws, ctx, Reason.UNAUTHENTICATED, f"no auth frame within {AUTH_TIMEOUT_S:g}s")
        return None
    except ProtocolError as exc:
        await _refuse(ws, ctx, Reason.UNAUTHENTICATED, f"first frame must be auth: {exc.message}")
        return None
    except WebSocketDisconnect:
        return None
    if not isinstance(frame, protocol.Auth) or frame.v != protocol.PROTOCOL_VERSION:
        await _refuse(
            ws,
            ctx,
            Reason.UNAUTHENTICATED,
            f"first frame must be auth with v={protocol.PROTOCOL_VERSION}",
        )
        return None
    if not frame.token:
        await _refuse(ws, ctx, Reason.AUTH_FAILED, "a token is required")
        return None
    try:
        claims = await ctx.jwt.verify(frame.token)
    except TokenRejectedError:
        await _refuse(ws, ctx, Reason.AUTH_FAILED, "token rejected")  # the reason is logged
        return None
    if not has_scope(claims, TokenScope.INGEST):
        # Market data is what every other user reads: only connector identities publish.
        await _refuse(
            ws,
            ctx,
            Reason.AUTH_FAILED,
            "this identity may not publish: connectors use a token with the ingest scope"
            " (POST /auth/connector-token with an ingest API key)",
        )
        return None
    source = str(claims["sub"])
    if frame.source:
        source = f"{source}:{frame.source}"
    # The source is part of every tick's identity in storage: refuse it here, before any
    # tick is acked, if storage would refuse it (same rule as database-service).
    if (refused := source_problem(source)) is not None:
        await _refuse(ws, ctx, Reason.SOURCE_FORMAT, refused.message)
        return None
    return source


async def _refuse(ws: WebSocket, ctx: IngestContext, reason: Reason, message: str) -> None:
    ctx.metrics.rejected.labels(reason.value).inc()
    with contextlib.suppress(Exception):
        await ws.send_bytes(protocol.error(reason, message))
        await ws.close(code=4401)


async def serve_connector(ws: WebSocket, ctx: IngestContext) -> None:
    await ws.accept()
    source = await authenticate(ws, ctx)
    if source is None:
        return
    ctx.metrics.connections.inc()
    session = secrets.token_hex(8)
    await ws.send_bytes(protocol.welcome(session, source))
    acks: AckQueue = asyncio.Queue(maxsize=MAX_IN_FLIGHT)
    recent = RecentIdentities()
    sender = asyncio.create_task(_send_acks(ws, acks, recent), name=f"acks:{session}")
    orders = None
    if ctx.channels is not None:
        orders = asyncio.create_task(
            deliver_instructions(
                ws,
                source,
                session,
                ctx.channels.queue,
                ctx.channels.presence,
                ctx.channels.wakeups,
            ),
            name=f"orders:{session}",
        )
    try:
        while True:
            raw = await receive_frame(ws)
            await _handle(raw, source, recent, ctx, ws, acks)
    except WebSocketDisconnect:
        pass
    finally:
        if orders is not None:
            orders.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await orders
        ctx.metrics.connections.dec()
        await acks.put(None)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(sender, 30)  # acks for what was stored still go out


async def _handle(
    raw: str | bytes,
    source: str,
    recent: RecentIdentities,
    ctx: IngestContext,
    ws: WebSocket,
    acks: AckQueue,
) -> None:
    try:
        frame = protocol.decode(raw, ctx.limits)
    except ProtocolError as exc:
        ctx.metrics.rejected.labels(exc.reason.value).inc()
        await ws.send_bytes(protocol.error(exc.reason, exc.message, exc.seq))
        return
    ctx.metrics.frame(type(frame).__name__)
    if isinstance(frame, protocol.Heartbeat):
        await acks.put(AckItem(frame.seq, None, 0, 0))
        return
    if isinstance(frame, protocol.Auth):
        await ws.send_bytes(protocol.error(Reason.MALFORMED, "already authenticated"))
        return
    if isinstance(frame, protocol.AccountFrame):
        await _account(frame, source, ctx, ws, acks)
        return
    if isinstance(frame, protocol.PositionsFrame | protocol.ExecutionReportFrame):
        await _relay_to_engine(frame, source, ctx, ws, acks)
        return
    ticks = [frame.tick] if isinstance(frame, protocol.TickFrame) else frame.ticks
    if len(ticks) > ctx.limits.max_ticks:
        ctx.metrics.rejected.labels(Reason.TOO_LARGE.value).inc()
        await ws.send_bytes(
            protocol.error(
                Reason.TOO_LARGE,
                f"at most {ctx.limits.max_ticks} ticks per frame",
                frame.seq,
            )
        )
        return
    bad: list[tuple[int, Reason, str]] = []
    for index, tick in enumerate(ticks):
        refused = protocol.check_tick(tick, source, ctx.max_skew_ms)
        if refused is not None:
            bad.append((index, *refused))
            ctx.metrics.rejected.labels(refused[0].value).inc()
    if bad:
        index, reason, why = bad[0]
        message = f"tick {index}: {why}"
        if len(bad) > 1:
            message += f" (and {len(bad) - 1} more bad tick(s)); nothing of this frame was stored"
        await ws.send_bytes(protocol.error(reason, message, frame.seq))
        return
    fresh = [
        sourced(t, source) for t in ticks if recent.first_time((t.symbol, t.time_msc, t.sequence))
    ]
    duplicates = len(ticks) - len(fresh)
    if duplicates:
        ctx.metrics.duplicates.inc(duplicates)
    if not fresh:
        await acks.put(AckItem(frame.seq, None, 0, duplicates))
        return
    ctx.fanout.offer(fresh)  # live fan-out never waits and never blocks storage
    keys = [(t.symbol, t.time_msc, t.sequence) for t in fresh]
    await acks.put(AckItem(frame.seq, ctx.sink.enqueue(fresh), len(fresh), duplicates, keys))


async def _relay_to_engine(
    frame: protocol.PositionsFrame | protocol.ExecutionReportFrame,
    source: str,
    ctx: IngestContext,
    ws: WebSocket,
    acks: AckQueue,
) -> None:
    """Acked only once the trading-engine stored it; refused with the engine's reason when
    it judged the frame (resending will not help), `unavailable` when it is away."""
    try:
        if ctx.engine is None:
            raise TradingEngineUnavailableError("no trading-engine configured")
        if isinstance(frame, protocol.PositionsFrame):
            await ctx.engine.positions(
                {
                    "source": source,
                    "login": frame.login,
                    "positions": [msgspec.structs.asdict(p) for p in frame.positions],
                }
            )
            count = len(frame.positions)
        else:
            body = msgspec.structs.asdict(frame)
            del body["seq"]
            await ctx.engine.execution_report({"source": source, **body})
            count = 1
    except TradingEngineRefusedError as exc:
        ctx.metrics.rejected.labels(Reason.ORDER_REFUSED.value).inc()
        await ws.send_bytes(protocol.error(Reason.ORDER_REFUSED, f"{exc.code}: {exc}", frame.seq))
        return
    except TradingEngineUnavailableError as exc:
        ctx.metrics.rejected.labels(Reason.UNAVAILABLE.value).inc()
        await ws.send_bytes(
            protocol.error(Reason.UNAVAILABLE, f"not stored, resend later: {exc}", frame.seq)
        )
        return
    await acks.put(AckItem(frame.seq, None, count, 0))


async def _account(
    frame: protocol.AccountFrame,
    source: str,
    ctx: IngestContext,
    ws: WebSocket,
    acks: AckQueue,
) -> None:
    a = frame.account
    body = protocol.encode(
        {
            "snapshots": [
                {
                    "source": source,
                    "login": a.login,
                    "time_msc": a.time_msc,
                    "currency": a.currency,
                    "leverage": a.leverage,
                    "balance": a.balance,
                    "equity": a.equity,
                    "margin": a.margin,
                    "margin_free": a.margin_free,
                    "margin_level": a.margin_level,
                    "profit": a.profit,
                }
            ]
        }
    )
    try:
        await ctx.store_account(body)  # type: ignore[operator]
    except Exception as exc:
        ctx.metrics.rejected.labels(Reason.UNAVAILABLE.value).inc()
        await ws.send_bytes(
            protocol.error(
                Reason.UNAVAILABLE, f"account snapshot not stored, resend later: {exc}", frame.seq
            )
        )
        return
    if ctx.channels is not None:  # the latest snapshot, for the free-margin check
        with contextlib.suppress(Exception):
            await ctx.channels.accounts.put(source, msgspec.structs.asdict(a))
    await acks.put(AckItem(frame.seq, None, 1, 0))


async def _send_acks(ws: WebSocket, acks: AckQueue, recent: RecentIdentities) -> None:
    while True:
        item = await acks.get()
        if item is None:
            return
        durable = "none"
        if item.future is not None:
            try:
                durable = await item.future
            except Exception as exc:
                _log.error("frame %s could not be made durable: %s", item.seq, exc)
                recent.forget(item.forget or [])
                with contextlib.suppress(Exception):
                    await ws.send_bytes(
                        protocol.error(
                            Reason.UNAVAILABLE, "not stored; resend this frame", item.seq
                        )
                    )
                continue
        with contextlib.suppress(Exception):
            await ws.send_bytes(
                protocol.ack(item.seq, item.accepted, item.duplicates, durable=durable)
            )
