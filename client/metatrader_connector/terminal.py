"""What the connector needs from an MT5 terminal, whichever terminal it is.

Two implementations: `MetaTrader5Terminal` (the official `MetaTrader5` package, Windows only)
and `SimulatorTerminal` (the random-walk simulator, everywhere). The same contract tests run
against both (the first through a stand-in module with the package's names and shapes).

Tick capture goes by cursor, as `copy_ticks_from` allows: the last `time_msc` captured and
how many ticks carried exactly that `time_msc` (MT5 stamps several ticks in one millisecond),
so that asking again from the cursor neither repeats nor skips a tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from aitrading.client.metatrader_connector.outbox import Cursor
from aitrading.core.market.execution_status import ExecutionStatus
from aitrading.core.market.ticks import Tick


@dataclass(frozen=True)
class TerminalTick:
    symbol: str
    time_msc: int
    bid: float
    ask: float
    last: float
    volume: int
    volume_real: float
    flags: int

    def numbered(self, sequence: int) -> Tick:
        """The tick as protocol v1 sends it: the platform's one tick model."""
        return Tick(
            self.symbol,
            self.time_msc,
            sequence,
            self.bid,
            self.ask,
            self.last,
            self.volume,
            self.volume_real,
            self.flags,
        )


def after_cursor(
    ticks: list[TerminalTick], cursor: Cursor | None
) -> tuple[list[TerminalTick], Cursor | None]:
    """The ticks not captured yet (from a batch asked for at the cursor's millisecond), and the
    cursor after them. Ticks must be in terminal order (time_msc ascending)."""
    fresh: list[TerminalTick] = []
    skip_at, skip = (cursor.time_msc, cursor.seen_at_time) if cursor else (-1, 0)
    for tick in ticks:
        if tick.time_msc < skip_at:
            continue
        if tick.time_msc == skip_at and skip > 0:
            skip -= 1
            continue
        fresh.append(tick)
    if not fresh:
        return [], cursor
    last = fresh[-1].time_msc
    same = sum(1 for t in fresh if t.time_msc == last)
    if cursor is not None and cursor.time_msc == last:
        same += cursor.seen_at_time
    return fresh, Cursor(last, same)


def capture_page(
    terminal: Terminal, symbol: str, cursor: Cursor | None, limit: int
) -> tuple[list[TerminalTick], Cursor | None]:
    """Up to `limit` new ticks of `symbol` and the cursor after them. The terminal is asked
    for the ticks the cursor already counted too, so a page is never filled with them alone
    (which would stall capture when many ticks share one millisecond)."""
    seen = cursor.seen_at_time if cursor else 0
    return after_cursor(terminal.ticks_from(symbol, cursor, limit + seen), cursor)


@dataclass(frozen=True)
class Execution:
    """What the terminal did with one order, as an execution report says it."""

    status: ExecutionStatus
    retcode: int
    message: str
    ticket: int | None = None
    filled_volume: float = 0.0
    fill_price: float | None = None


class TerminalError(Exception):
    """The terminal did not answer as it should (`last_error()` in the message)."""


class Terminal(Protocol):
    def connect(self) -> None: ...

    def disconnect(self) -> None: ...

    def ticks_from(self, symbol: str, cursor: Cursor | None, limit: int) -> list[TerminalTick]:
        """Ticks at or after the cursor's millisecond (all of them from there), oldest first."""
        ...

    def account(self) -> dict[str, Any]:
        """protocol v1 `account_info` fields."""
        ...

    def positions(self) -> list[dict[str, Any]]:
        """protocol v1 `positions` items."""
        ...

    def place(self, order: dict[str, Any]) -> Execution: ...

    def cancel(self, order: dict[str, Any]) -> Execution: ...

    def pending_updates(self, resting: dict[int, dict[str, Any]]) -> dict[int, Execution]:
        """For orders resting at the terminal (ticket → the order as instructed): those that
        were filled, canceled or expired there since — a pending order's outcome comes later
        than its instruction, and the connector must report it too."""
        ...
