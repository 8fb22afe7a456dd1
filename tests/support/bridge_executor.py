"""A test-side executor of signed order instructions over a bare `BridgeClient`.

The order tests use it where they need a connector they can steer frame by frame (drop
mid-order, answer for another connector); the product's connector is
`client/metatrader_connector/connector.py`. Like a terminal with `order_send`, it verifies
the instruction (signature, audience, expiry), executes each order id at most once, fills
market orders at the simulated price (now and then a requote or rejection with the real MT5
retcodes), rests limit and stop orders until the price crosses them, cancels on request,
keeps netted positions, and answers every instruction with an `execution_report`.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from aitrading.client.metatrader_connector.bridge_client import BridgeClient, now_msc
from aitrading.client.metatrader_connector.simulator import Simulator, SymbolModel
from aitrading.core.infrastructure.config_manager import Settings
from aitrading.core.market.order_instructions import (
    InstructionKind,
    InstructionRejectedError,
    verify_instruction,
)

_log = logging.getLogger(__name__)

# MetaTrader 5 trade server return codes (MqlTradeResult.retcode)
TRADE_RETCODE_REQUOTE = 10004
TRADE_RETCODE_REJECT = 10006
TRADE_RETCODE_PLACED = 10008
TRADE_RETCODE_DONE = 10009
TRADE_RETCODE_INVALID = 10013
TRADE_RETCODE_INVALID_VOLUME = 10014
TRADE_RETCODE_MARKET_CLOSED = 10018


@dataclass
class _Resting:
    order: dict[str, Any]
    ticket: int


@dataclass
class _Position:
    ticket: int
    symbol: str
    volume: float  # signed: buy > 0
    price_open: float


@dataclass
class SimulatedTerminal:
    client: BridgeClient
    simulator: Simulator
    public_key: Callable[[str], Ed25519PublicKey | None]
    issuer: str
    source: str  # this connector's source id (the instruction's audience)
    login: int = 5_000_001
    balance: float = 100_000.0
    leverage: int = 100
    requote_probability: float = 0.0
    reject_probability: float = 0.0
    seed: int | None = None
    executed: set[str] = field(default_factory=set)
    resting: dict[str, _Resting] = field(default_factory=dict)
    positions: dict[str, _Position] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)  # instructions not executed, and why
    _tickets: itertools.count[int] = field(default_factory=lambda: itertools.count(70_000_001))
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    async def on_order(self, token: str) -> None:
        try:
            claims = verify_instruction(token, self.public_key, self.issuer, self.source)
        except InstructionRejectedError as exc:
            self.refused.append(str(exc))
            _log.warning("instruction refused: %s", exc)
            return
        order = claims["order"]
        kind = InstructionKind(claims["kind"])
        if kind is InstructionKind.CANCEL:
            await self._cancel(order)
            return
        if order["id"] in self.executed:
            return  # delivered again (a reconnect): executed once already
        self.executed.add(order["id"])
        await self._place(order)

    async def _place(self, order: dict[str, Any]) -> None:
        model = self._model(order["symbol"])
        if model is None:
            await self._report(order, "rejected", TRADE_RETCODE_INVALID, "unknown symbol")
            return
        if order["type"] == "market":
            roll = self._rng.random()
            if roll < self.requote_probability:
                await self._report(order, "rejected", TRADE_RETCODE_REQUOTE, "requote")
                return
            if roll < self.requote_probability + self.reject_probability:
                await self._report(order, "rejected", TRADE_RETCODE_REJECT, "request rejected")
                return
            await self._fill(order, self._price(model, order["side"]))
            return
        ticket = next(self._tickets)
        self.resting[order["id"]] = _Resting(order, ticket)
        await self._report(order, "accepted", TRADE_RETCODE_PLACED, "order placed", ticket=ticket)
        await self.check_resting()

    async def _cancel(self, order: dict[str, Any]) -> None:
        resting = self.resting.pop(order["id"], None)
        if resting is not None:
            await self._report(order, "canceled", TRADE_RETCODE_DONE, "order removed")
        elif order["id"] in self.executed:
            await self._report(order, "cancel_rejected", TRADE_RETCODE_INVALID, "already filled")
        else:
            self.executed.add(order["id"])  # never placed: a later place must not run
            await self._report(order, "canceled", TRADE_RETCODE_DONE, "never placed")

    async def check_resting(self) -> None:
        """Fill resting limit/stop orders the simulated price has crossed."""
        for order_id, resting in list(self.resting.items()):
            order = resting.order
            model = self._model(order["symbol"])
            if model is None:
                continue
            price = self._price(model, order["side"])
            buy = order["side"] == "buy"
            limit = order["type"] == "limit"
            crossed = (
                (price <= order["price"] if buy else price >= order["price"])
                if limit
                else (price >= order["price"] if buy else price <= order["price"])
            )
            if crossed:
                del self.resting[order_id]
                await self._fill(order, price, resting.ticket)

    async def _fill(self, order: dict[str, Any], price: float, ticket: int | None = None) -> None:
        ticket = ticket or next(self._tickets)
        signed = order["volume"] if order["side"] == "buy" else -order["volume"]
        held = self.positions.get(order["symbol"])
        if held is None:
            self.positions[order["symbol"]] = _Position(ticket, order["symbol"], signed, price)
        else:
            total = held.volume + signed
            if abs(total) < 1e-9:
                del self.positions[order["symbol"]]
            else:
                if (total > 0) == (held.volume > 0) and abs(total) > abs(held.volume):
                    held.price_open = (
                        held.price_open * abs(held.volume) + price * abs(signed)
                    ) / abs(total)
                held.volume = total
        await self._report(
            order,
            "filled",
            TRADE_RETCODE_DONE,
            "request completed",
            ticket=ticket,
            filled_volume=order["volume"],
            fill_price=price,
        )
        await self.send_state()

    async def send_state(self) -> None:
        """`positions` and `account_info`, as a connector sends after every change."""
        positions = []
        floating = 0.0
        margin = 0.0
        for held in self.positions.values():
            model = self._model(held.symbol)
            side = "buy" if held.volume > 0 else "sell"
            current = self._price(model, "sell" if side == "buy" else "buy") if model else 0.0
            contract = 100_000.0
            profit = (current - held.price_open) * held.volume * contract
            floating += profit
            margin += abs(held.volume) * contract * held.price_open / self.leverage
            positions.append(
                {
                    "ticket": held.ticket,
                    "symbol": held.symbol,
                    "type": side,
                    "volume": round(abs(held.volume), 8),
                    "price_open": held.price_open,
                    "price_current": current,
                    "profit": round(profit, 2),
                }
            )
        await self.client.send_positions(self.login, positions)
        equity = self.balance + floating
        await self.client.send_account(
            {
                "login": self.login,
                "time_msc": now_msc(),
                "currency": "USD",
                "leverage": self.leverage,
                "balance": self.balance,
                "equity": round(equity, 2),
                "margin": round(margin, 2),
                "margin_free": round(equity - margin, 2),
                "margin_level": round(equity / margin * 100, 2) if margin else 0.0,
                "profit": round(floating, 2),
            }
        )

    async def _report(
        self,
        order: dict[str, Any],
        status: str,
        retcode: int,
        message: str,
        ticket: int | None = None,
        filled_volume: float = 0.0,
        fill_price: float | None = None,
    ) -> None:
        report: dict[str, Any] = {
            "order_id": order["id"],
            "status": status,
            "retcode": retcode,
            "filled_volume": filled_volume,
            "message": message,
        }
        if ticket is not None:
            report["ticket"] = ticket
        if fill_price is not None:
            report["fill_price"] = fill_price
        await self.client.send_report(report)

    def _model(self, symbol: str) -> SymbolModel | None:
        return next((m for m in self.simulator.symbols if m.symbol == symbol), None)

    @staticmethod
    def _price(model: SymbolModel, side: str) -> float:
        half = model.spread / 2
        price = model.mid + half if side == "buy" else model.mid - half
        return round(price, model.digits)


def terminal_for(
    settings: Settings, client: BridgeClient, simulator: Simulator
) -> SimulatedTerminal:
    """The demo's terminal: instructions verified with the stack's public keys (the key ring
    these settings load), executed with occasional requotes and rejections."""
    from aitrading.core.security.keys import load_key_ring

    return SimulatedTerminal(
        client,
        simulator,
        load_key_ring(settings).public_key,
        settings.security.jwt_issuer,
        client.welcome["source"],
        requote_probability=0.05,
        reject_probability=0.02,
    )
