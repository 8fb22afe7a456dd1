"""The `Terminal` contract, run against both implementations: `MetaTrader5Terminal` over a
STAND-IN of the `MetaTrader5` package (tests/support/metatrader5_standin.py — the package's
names and shapes, not the package) and `SimulatorTerminal`. The real package and a real
terminal are verified only on Windows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from aitrading.client.metatrader_connector.mt5_terminal import MetaTrader5Terminal
from aitrading.client.metatrader_connector.outbox import Cursor
from aitrading.client.metatrader_connector.simulator_terminal import SimulatorTerminal
from aitrading.client.metatrader_connector.terminal import (
    Terminal,
    TerminalError,
    TerminalTick,
    capture_page,
)
from aitrading.core.market.execution_status import ExecutionStatus
from tests.support import metatrader5_standin as standin

T0 = 1_800_000_000_000
Feed = Callable[[str, list[tuple[int, float, float]]], None]
Fill = Callable[[int], None]


MARKET_REACHES: dict[str, Fill] = {}  # how each terminal is made to fill a pending order


@pytest.fixture(params=["mt5-standin", "simulator"])
def terminal(request: pytest.FixtureRequest) -> Iterator[tuple[Terminal, Feed]]:
    MARKET_REACHES["current"] = (
        (lambda ticket: standin.fill_pending(ticket, 1.0999))
        if request.param == "mt5-standin"
        else (lambda ticket: None)  # the simulator fills when its price crosses the limit
    )
    if request.param == "mt5-standin":
        standin.reset({"EURUSD": []})
        mt5 = MetaTrader5Terminal(1, "correct", "StandIn-Demo", module=standin)  # type: ignore[arg-type]
        mt5.connect()
        yield mt5, standin.add_ticks
        mt5.disconnect()
    else:
        sim = SimulatorTerminal()
        sim.connect()

        def feed(symbol: str, ticks: list[tuple[int, float, float]]) -> None:
            sim.record(
                [TerminalTick(symbol, ms, bid, ask, 0.0, 0, 0.0, 6) for ms, bid, ask in ticks]
            )

        yield sim, feed


def capture(
    terminal: Terminal, cursor: Cursor | None, limit: int
) -> tuple[list[int], Cursor | None]:
    """One capture round as the connector does it: ask from the cursor, drop what it has."""
    got: list[int] = []
    while True:
        fresh, cursor = capture_page(terminal, "EURUSD", cursor, limit)
        if not fresh:
            return got, cursor
        got += [t.time_msc for t in fresh]


def test_capture_by_cursor_neither_repeats_nor_skips(terminal: tuple[Terminal, Feed]) -> None:
    term, feed = terminal
    # several ticks in one millisecond, and at the same second, as MT5 produces them
    first = [
        (T0, 1.1, 1.1002),
        (T0 + 5, 1.1001, 1.1003),
        (T0 + 5, 1.1002, 1.1004),
        (T0 + 5, 1.1, 1.1002),
        (T0 + 900, 1.1, 1.1003),
    ]
    feed("EURUSD", first)
    got, cursor = capture(term, None, limit=2)  # small pages: every boundary is crossed
    assert got == [ms for ms, _, _ in first]
    assert cursor == Cursor(T0 + 900, 1)
    later = [(T0 + 900, 1.2, 1.2002), (T0 + 1500, 1.2, 1.2001)]  # one more in the same ms
    feed("EURUSD", later)
    more, cursor = capture(term, cursor, limit=2)
    assert more == [T0 + 900, T0 + 1500]
    assert capture(term, cursor, limit=2)[0] == []  # nothing new: nothing again


def test_account_and_positions_have_the_protocol_shapes(terminal: tuple[Terminal, Feed]) -> None:
    term, feed = terminal
    feed("EURUSD", [(T0, 1.1, 1.1002)])
    account = term.account()
    assert set(account) == {
        "login",
        "currency",
        "leverage",
        "balance",
        "equity",
        "margin",
        "margin_free",
        "margin_level",
        "profit",
    }
    filled = term.place(_order("market"))
    assert filled.status is ExecutionStatus.FILLED
    assert filled.retcode == 10009
    assert filled.ticket
    assert filled.filled_volume == 0.1
    assert filled.fill_price
    (position,) = term.positions()
    assert (position["symbol"], position["type"], position["volume"]) == ("EURUSD", "buy", 0.1)


def test_pending_orders_rest_and_cancel(terminal: tuple[Terminal, Feed]) -> None:
    term, feed = terminal
    feed("EURUSD", [(T0, 1.1, 1.1002)])
    placed = term.place({**_order("limit"), "price": 1.05})
    assert (placed.status, placed.retcode) == (ExecutionStatus.ACCEPTED, 10008)
    canceled = term.cancel({**_order("limit"), "ticket": placed.ticket})
    assert canceled.status is ExecutionStatus.CANCELED
    again = term.cancel({**_order("limit"), "ticket": placed.ticket})
    assert again.status is ExecutionStatus.CANCEL_REJECTED


def _order(kind: str) -> dict[str, Any]:
    return {
        "id": "a" * 32,
        "client_order_id": "c1",
        "symbol": "EURUSD",
        "side": "buy",
        "type": kind,
        "volume": 0.1,
        "time_in_force": "gtc",
    }


def test_the_mt5_adapter_reports_the_packages_errors() -> None:
    standin.reset({"EURUSD": []}, free_margin=50.0)
    wrong = MetaTrader5Terminal(1, "wrong", "StandIn-Demo", module=standin)  # type: ignore[arg-type]
    with pytest.raises(TerminalError, match="Authorization failed"):
        wrong.connect()
    mt5 = MetaTrader5Terminal(1, "correct", "StandIn-Demo", module=standin)  # type: ignore[arg-type]
    with pytest.raises(TerminalError, match="No IPC connection"):
        mt5.account()  # not initialized
    mt5.connect()
    standin.add_ticks("EURUSD", [(T0, 1.1, 1.1002)])
    no_money = mt5.place(_order("market"))  # order_check refuses: margin
    assert (no_money.status, no_money.retcode) == (ExecutionStatus.REJECTED, 10019)
    with pytest.raises(TerminalError, match="Invalid params"):
        mt5.ticks_from("NOSUCH", None, 10)


def test_a_resting_order_filled_later_is_reported(terminal: tuple[Terminal, Feed]) -> None:
    term, feed = terminal
    feed("EURUSD", [(T0, 1.1, 1.1002)])
    order = {**_order("limit"), "price": 10.0}  # a buy limit the simulated market crosses
    placed = term.place(order)
    assert placed.status is ExecutionStatus.ACCEPTED
    assert placed.ticket is not None
    MARKET_REACHES["current"](placed.ticket)
    updates = term.pending_updates({placed.ticket: order})
    assert list(updates) == [placed.ticket]
    filled = updates[placed.ticket]
    assert filled.status is ExecutionStatus.FILLED
    assert filled.filled_volume == 0.1
    assert filled.fill_price
