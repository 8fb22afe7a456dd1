"""The tick, and the rules it must satisfy, in one place: the connector, data-bridge and
database-service all import `Tick` (as a connector sends it), `SourcedTick` (with the source
it came from: what is journaled, fanned out, stored and served) and `tick_problem`.

An ack promises the tick is safe, so data-bridge must never ack a tick that storage will
refuse. Both therefore check a tick with `tick_problem` (storage adds nothing of its own),
and the bounds here are those of the storage columns: `Int64`/`UInt32` integers, finite
`Float64` prices, `DateTime64(3)` times, `LowCardinality(String)` names from a small ASCII
alphabet. Patterns are matched with `fullmatch`, so that a trailing newline or any other
control character never slips through (`re.match` with `$` accepts "EURUSD\\n").
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from enum import StrEnum

import msgspec
from msgspec.structs import astuple

SYMBOL_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._#-]{0,31}"
SOURCE_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}"
SYMBOL_RE = re.compile(SYMBOL_PATTERN)
SOURCE_RE = re.compile(SOURCE_PATTERN)
MIN_TIME_MSC = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_TIME_MSC = 4_102_444_800_000  # 2100-01-01T00:00:00Z
INT64_MAX = 2**63 - 1
UINT32_MAX = 2**32 - 1
# MT5 TICK_FLAG_*: BID 2, ASK 4, LAST 8, VOLUME 16, BUY 32, SELL 64.
KNOWN_FLAGS = 2 | 4 | 8 | 16 | 32 | 64


class Tick(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    """One MT5 tick as a connector sends it (protocol v1); its source is the connection's.
    The fields are `SourcedTick`'s after its source, in the same order. Not tracked by the
    garbage collector (`gc=False`): it holds only strings and numbers, so it can never be part
    of a cycle, and batches of thousands no longer lengthen every collection."""

    symbol: str
    time_msc: int
    sequence: int
    bid: float
    ask: float
    last: float = 0.0
    volume: int = 0
    volume_real: float = 0.0
    flags: int = 0


class SourcedTick(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    """A tick with its source. Identity: (source, symbol, time_msc, sequence) — the key
    data-bridge and database-service de-duplicate by, and the ClickHouse table's order.
    The field order is the storage column order (`STORAGE_COLUMNS`). Untracked by the garbage
    collector, as `Tick`."""

    source: str
    symbol: str
    time_msc: int
    sequence: int
    bid: float
    ask: float
    last: float = 0.0
    volume: int = 0
    volume_real: float = 0.0
    flags: int = 0

    @property
    def identity(self) -> tuple[str, str, int, int]:
        return (self.source, self.symbol, self.time_msc, self.sequence)


def sourced(tick: Tick, source: str) -> SourcedTick:
    return SourcedTick(source, *astuple(tick))


# The ticks table's columns, in SourcedTick's field order (`time` holds time_msc).
STORAGE_COLUMNS: tuple[str, ...] = tuple(
    "time" if name == "time_msc" else name for name in SourcedTick.__struct_fields__
)


class TickProblem(StrEnum):
    """Why a tick is refused; data-bridge uses the value as the `code` of its error frame."""

    SYMBOL_FORMAT = "symbol_format"
    SOURCE_FORMAT = "source_format"
    NON_FINITE_PRICE = "non_finite_price"
    NON_POSITIVE_PRICE = "non_positive_price"
    ASK_BELOW_BID = "ask_below_bid"
    NEGATIVE_VOLUME = "negative_volume"
    OUT_OF_RANGE = "out_of_range"
    SEQUENCE = "sequence"
    UNKNOWN_FLAGS = "unknown_flags"


@dataclass(frozen=True)
class Refusal:
    problem: TickProblem
    message: str


# A batch or a connection carries the same few sources and symbols tick after tick: each
# distinct string is matched once (bounded), which was a fifth of database-service's CPU
# while storing (profile of bench/ws_ingest.py).
@functools.lru_cache(maxsize=4096)
def source_problem(source: str) -> Refusal | None:
    """A connector's source id (it becomes part of every tick's identity)."""
    if not SOURCE_RE.fullmatch(source):
        return Refusal(
            TickProblem.SOURCE_FORMAT, f"source {source!r} does not match {SOURCE_PATTERN}"
        )
    return None


@functools.lru_cache(maxsize=4096)
def _symbol_problem(symbol: str) -> Refusal | None:
    if not SYMBOL_RE.fullmatch(symbol):
        return Refusal(
            TickProblem.SYMBOL_FORMAT, f"symbol {symbol!r} does not match {SYMBOL_PATTERN}"
        )
    return None


def tick_problem(tick: Tick | SourcedTick, source: str) -> Refusal | None:
    """The first rule this tick from `source` breaks, or None when storage will take it.

    For a tick msgspec has decoded into `Tick` or `SourcedTick`, as both sides have it: the
    decoder already refused every value of the wrong type (a bool or a float for an `int`, a
    string or a bool for a `float`; `tests/unit/test_tick_rules_agree.py` pins that), so the
    rules here are on the values. A JSON number beyond a double decodes as infinite."""
    if (refused := source_problem(source)) is not None:
        return refused
    if (refused := _symbol_problem(tick.symbol)) is not None:
        return refused
    bid, ask, last, volume_real = tick.bid, tick.ask, tick.last, tick.volume_real
    if not (
        math.isfinite(bid)
        and math.isfinite(ask)
        and math.isfinite(last)
        and math.isfinite(volume_real)
    ):
        return Refusal(TickProblem.NON_FINITE_PRICE, "prices and volumes must be finite numbers")
    if bid <= 0 or ask <= 0 or last < 0:
        return Refusal(TickProblem.NON_POSITIVE_PRICE, "bid and ask must be > 0 and last >= 0")
    if ask < bid:
        return Refusal(TickProblem.ASK_BELOW_BID, f"ask {ask} is below bid {bid}")
    volume, sequence, time_msc, flags = tick.volume, tick.sequence, tick.time_msc, tick.flags
    if volume < 0 or volume_real < 0:
        return Refusal(TickProblem.NEGATIVE_VOLUME, "volumes must be >= 0")
    if volume > INT64_MAX:
        return Refusal(TickProblem.OUT_OF_RANGE, f"volume must be at most {INT64_MAX}")
    if not 0 <= sequence <= INT64_MAX:
        return Refusal(TickProblem.SEQUENCE, f"sequence must be between 0 and {INT64_MAX}")
    if not MIN_TIME_MSC <= time_msc <= MAX_TIME_MSC:
        return Refusal(
            TickProblem.OUT_OF_RANGE,
            f"time_msc {time_msc} is outside {MIN_TIME_MSC}..{MAX_TIME_MSC} (2000-2100 UTC)",
        )
    if not 0 <= flags <= UINT32_MAX or flags & ~KNOWN_FLAGS:
        return Refusal(TickProblem.UNKNOWN_FLAGS, f"flags {flags} has bits outside {KNOWN_FLAGS}")
    return None
