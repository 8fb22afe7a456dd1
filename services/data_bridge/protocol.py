"""The connector protocol, version 1 (docs/protocol.md): frames, decoding, validation.

Frames are JSON text messages. Decoding is msgspec (typed, no intermediate dicts); the checks
msgspec's types cannot express — finite prices, ask ≥ bid, symbol format, clock skew, known
flags — are explicit here, each with its own reason code, so that every refusal can be
counted and explained. A bad frame never closes the connection.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

import msgspec

from aitrading.core.market.ticks import Tick, tick_problem

PROTOCOL_VERSION = 1


@dataclass(frozen=True)
class FrameLimits:
    """What one frame may be (settings: data_bridge.max_frame_bytes, ..._max_json_depth,
    ..._max_ticks_per_frame)."""

    max_bytes: int = 4 * 1024 * 1024
    max_depth: int = 16
    max_ticks: int = 10_000


class Reason(StrEnum):
    """Why a frame or tick was refused; the `code` of an `error` frame."""

    MALFORMED = "malformed"
    UNKNOWN_TYPE = "unknown_type"
    TOO_LARGE = "too_large"
    UNAUTHENTICATED = "unauthenticated"
    AUTH_FAILED = "auth_failed"
    SYMBOL_FORMAT = "symbol_format"
    SOURCE_FORMAT = "source_format"
    OUT_OF_RANGE = "out_of_range"
    NON_FINITE_PRICE = "non_finite_price"
    NON_POSITIVE_PRICE = "non_positive_price"
    ASK_BELOW_BID = "ask_below_bid"
    TIME_SKEW = "time_skew"
    UNKNOWN_FLAGS = "unknown_flags"
    NEGATIVE_VOLUME = "negative_volume"
    SEQUENCE = "sequence"
    UNAVAILABLE = "unavailable"
    ORDER_REFUSED = "order_refused"


class ProtocolError(Exception):
    def __init__(self, reason: Reason, message: str, seq: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.seq = seq


class Account(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    login: int
    time_msc: int
    currency: str
    leverage: int
    balance: float
    equity: float
    margin: float
    margin_free: float
    margin_level: float
    profit: float


class Position(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    ticket: int
    symbol: str
    type: Literal["buy", "sell"]
    volume: float
    price_open: float
    price_current: float
    profit: float


class Auth(msgspec.Struct, tag="auth", forbid_unknown_fields=True):
    v: int
    token: str | None = None
    api_key: str | None = None
    source: str | None = None


class TickFrame(msgspec.Struct, tag="tick", forbid_unknown_fields=True):
    seq: int
    tick: Tick


class TicksFrame(msgspec.Struct, tag="ticks", forbid_unknown_fields=True):
    seq: int
    ticks: list[Tick]


class AccountFrame(msgspec.Struct, tag="account_info", forbid_unknown_fields=True):
    seq: int
    account: Account


class PositionsFrame(msgspec.Struct, tag="positions", forbid_unknown_fields=True):
    seq: int
    login: int
    positions: list[Position]


class Heartbeat(msgspec.Struct, tag="heartbeat", forbid_unknown_fields=True):
    seq: int


ReportStatus = Literal[
    "accepted", "rejected", "partially_filled", "filled", "canceled", "cancel_rejected", "expired"
]


class ExecutionReportFrame(msgspec.Struct, tag="execution_report", forbid_unknown_fields=True):
    """v1.1: what the terminal did with an `order` instruction (docs/protocol.md §5)."""

    seq: int
    order_id: str
    status: ReportStatus
    retcode: int | None = None
    ticket: int | None = None
    filled_volume: float = 0.0
    fill_price: float | None = None
    message: str = ""


Frame = (
    Auth | TickFrame | TicksFrame | AccountFrame | PositionsFrame | Heartbeat | ExecutionReportFrame
)
_decoder: msgspec.json.Decoder[Frame] = msgspec.json.Decoder(Frame)
_encoder = msgspec.json.Encoder()
_seq_only = msgspec.json.Decoder(dict[str, object])


def decode(raw: str | bytes, limits: FrameLimits = FrameLimits()) -> Frame:
    """A typed frame, or `ProtocolError` naming what is wrong (and the seq when readable).

    Typed decoding never goes deeper than the frame types (it stops at the first value that
    does not fit), so the depth limit guards only the best-effort read of `seq` from a frame
    that failed."""
    if len(raw) > limits.max_bytes:
        raise ProtocolError(Reason.TOO_LARGE, f"frame over {limits.max_bytes} bytes")
    try:
        frame: Frame = _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        seq = None if nesting_exceeds(raw, limits.max_depth) else _best_effort_seq(raw)
        text = str(exc)
        if "`$.type`" in text or "missing required field `type`" in text:
            raise ProtocolError(Reason.UNKNOWN_TYPE, text, seq) from None
        raise ProtocolError(Reason.MALFORMED, text, seq) from None
    except msgspec.DecodeError as exc:
        raise ProtocolError(Reason.MALFORMED, f"not JSON: {exc}") from None
    except RecursionError:
        raise ProtocolError(Reason.MALFORMED, "JSON nested too deeply") from None
    return frame


def nesting_exceeds(raw: str | bytes, limit: int) -> bool:
    """Whether brackets outside strings nest deeper than `limit` (one pass, no decoding)."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _best_effort_seq(raw: str | bytes) -> int | None:
    try:
        value = _seq_only.decode(raw).get("seq")
    except (msgspec.MsgspecError, RecursionError):
        return None
    return value if isinstance(value, int) else None


def check_tick(
    tick: Tick, source: str, max_skew_ms: int, now_ms: int | None = None
) -> tuple[Reason, str] | None:
    """Why this tick of a decoded frame is refused (reason, message), or None.

    First the rules storage imposes (`core.market.ticks`, the same function database-service
    applies, so nothing acked here can be refused there; the frame's decoder already refused
    every value of the wrong type), then this bridge's own policy: the tick's clock must be
    within `max_skew_ms` of ours.
    """
    refused = tick_problem(tick, source)
    if refused is not None:
        return Reason(refused.problem.value), refused.message
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if abs(tick.time_msc - now) > max_skew_ms:
        return Reason.TIME_SKEW, f"time_msc {tick.time_msc} is outside the allowed clock skew"
    return None


def ack(
    seq: int, stored: int, duplicates: int, rejected: int = 0, durable: str = "journal"
) -> bytes:
    return _encoder.encode(
        {
            "type": "ack",
            "seq": seq,
            "accepted": stored,
            "duplicates": duplicates,
            "rejected": rejected,
            "durable": durable,
        }
    )


def error(reason: Reason, message: str, seq: int | None = None) -> bytes:
    return _encoder.encode({"type": "error", "code": reason.value, "message": message, "seq": seq})


def order(instruction: str) -> bytes:
    """v1.1: a signed order instruction for the connector (docs/protocol.md §5)."""
    return _encoder.encode({"type": "order", "instruction": instruction})


def welcome(session: str, source: str) -> bytes:
    return _encoder.encode(
        {"type": "welcome", "v": PROTOCOL_VERSION, "session": session, "source": source}
    )


def encode(value: object) -> bytes:
    return _encoder.encode(value)
