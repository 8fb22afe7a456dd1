"""`SimulatorTerminal`: the `Terminal` contract over the random-walk simulator.

It keeps a tick history the way a terminal does (so capture by cursor behaves as with
`copy_ticks_from`), fills market orders at the simulated price, rests limit and stop orders
with a ticket, cancels them, and keeps netted positions and an account.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

from aitrading.client.metatrader_connector.outbox import Cursor
from aitrading.client.metatrader_connector.simulator import Simulator
from aitrading.client.metatrader_connector.terminal import Execution, TerminalTick
from aitrading.core.market.execution_status import ExecutionStatus

DONE, PLACED, INVALID, REQUOTE, REJECT = 10009, 10008, 10013, 10004, 10006


class SimulatorTerminal:
    def __init__(
        self,
        simulator: Simulator | None = None,
        balance: float = 100_000.0,
        requote_probability: float = 0.0,
        reject_probability: float = 0.0,
        seed: int | None = None,
    ) -> None:
        self.simulator = simulator or Simulator()
        self._requote = requote_probability
        self._reject = reject_probability
        self._rng = random.Random(seed)  # noqa: S311 - simulation, not security
        self.history: dict[str, list[TerminalTick]] = {}
        self._tickets = itertools.count(60_000_001)
        self._resting: dict[int, dict[str, Any]] = {}
        self._positions: dict[str, tuple[int, float, float]] = {}  # symbol -> ticket, lots, price
        self._balance = balance
        self.connected = False

    def connect(self) -> None:
        self.connected = True

    def disconnect(self) -> None:
        self.connected = False

    def record(self, ticks: list[TerminalTick]) -> None:
        """Ticks the terminal received (tests; `advance` for simulated time)."""
        for tick in ticks:
            self.history.setdefault(tick.symbol, []).append(tick)

    def advance(self, seconds: float) -> None:
        self.record(
            [
                TerminalTick(
                    t["symbol"],
                    t["time_msc"],
                    t["bid"],
                    t["ask"],
                    t.get("last", 0.0),
                    t.get("volume", 0),
                    t.get("volume_real", 0.0),
                    t["flags"],
                )
                for t in self.simulator.ticks_for(seconds)
            ]
        )

    def ticks_from(self, symbol: str, cursor: Cursor | None, limit: int) -> list[TerminalTick]:
        start = cursor.time_msc if cursor else 0
        return [t for t in self.history.get(symbol, []) if t.time_msc >= start][:limit]

    def account(self) -> dict[str, Any]:
        held = self._positions.values()
        margin = sum(abs(lots) * 100_000 * price / 100 for _, lots, price in held)
        return {
            "login": 5_000_001,
            "currency": "USD",
            "leverage": 100,
            "balance": self._balance,
            "equity": self._balance,
            "margin": margin,
            "margin_free": self._balance - margin,
            "margin_level": self._balance / margin * 100 if margin else 0.0,
            "profit": 0.0,
        }

    def positions(self) -> list[dict[str, Any]]:
        return [
            {
                "ticket": ticket,
                "symbol": symbol,
                "type": "buy" if lots > 0 else "sell",
                "volume": abs(lots),
                "price_open": price,
                "price_current": price,
                "profit": 0.0,
            }
            for symbol, (ticket, lots, price) in self._positions.items()
        ]

    def _price(self, symbol: str, side: str) -> float | None:
        model = next((m for m in self.simulator.symbols if m.symbol == symbol), None)
        if model is None:
            return None
        half = model.spread / 2
        return round(model.mid + half if side == "buy" else model.mid - half, model.digits)

    def place(self, order: dict[str, Any]) -> Execution:
        price = self._price(order["symbol"], order["side"])
        if price is None:
            return Execution(ExecutionStatus.REJECTED, INVALID, "unknown symbol")
        roll = self._rng.random()
        if order["type"] == "market" and roll < self._requote:
            return Execution(ExecutionStatus.REJECTED, REQUOTE, "requote")
        if order["type"] == "market" and roll < self._requote + self._reject:
            return Execution(ExecutionStatus.REJECTED, REJECT, "request rejected")
        ticket = next(self._tickets)
        if order["type"] != "market":
            self._resting[ticket] = order
            return Execution(ExecutionStatus.ACCEPTED, PLACED, "order placed", ticket)
        return self._fill(order, price, ticket)

    def _fill(self, order: dict[str, Any], price: float, ticket: int) -> Execution:
        signed = order["volume"] if order["side"] == "buy" else -order["volume"]
        held = self._positions.get(order["symbol"])
        lots = signed + (held[1] if held else 0.0)
        if abs(lots) < 1e-9:
            self._positions.pop(order["symbol"], None)
        else:
            self._positions[order["symbol"]] = (held[0] if held else ticket, lots, price)
        return Execution(
            ExecutionStatus.FILLED,
            DONE,
            "request completed",
            ticket,
            filled_volume=float(order["volume"]),
            fill_price=price,
        )

    def cancel(self, order: dict[str, Any]) -> Execution:
        if not order.get("ticket"):
            return Execution(ExecutionStatus.CANCELED, DONE, "never placed at the terminal")
        if self._resting.pop(int(order["ticket"]), None) is None:
            return Execution(ExecutionStatus.CANCEL_REJECTED, INVALID, "no such pending order")
        return Execution(ExecutionStatus.CANCELED, DONE, "order removed")

    def pending_updates(self, resting: dict[int, dict[str, Any]]) -> dict[int, Execution]:
        """Resting limit/stop orders the simulated price has crossed are filled now."""
        done: dict[int, Execution] = {}
        for ticket in resting:
            order = self._resting.get(ticket)
            if order is None:
                continue  # canceled here, or not this terminal's: nothing new to say
            price = self._price(order["symbol"], order["side"])
            if price is None:
                continue
            buy, limit = order["side"] == "buy", order["type"] == "limit"
            crossed = (
                (price <= order["price"] if buy else price >= order["price"])
                if limit
                else (price >= order["price"] if buy else price <= order["price"])
            )
            if crossed:
                del self._resting[ticket]
                done[ticket] = self._fill(order, price, ticket)
        return done
