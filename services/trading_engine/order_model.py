"""What an order is: its request, its states and the one table of legal transitions.

The state machine is explicit (NautilusTrader's model, reduced to what the MT5 path needs): an
order is in exactly one `OrderStatus`, and `transition()` is the only way to leave it — every
other move is refused with `IllegalTransitionError`, so a late or repeated execution report can
never drag an order backwards (a FILLED order stays FILLED).
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Self

from pydantic import ConfigDict, Field, model_validator

from aitrading.core.market.execution_status import ExecutionStatus
from aitrading.core.market.ticks import SYMBOL_PATTERN
from aitrading.services.common.text import StorableText


class OrderStatus(StrEnum):
    INITIALIZED = "initialized"  # persisted, pre-trade risk not yet decided
    DENIED = "denied"  # refused by pre-trade risk (never left the platform)
    SUBMITTED = "submitted"  # signed instruction queued for the account's connector
    ACCEPTED = "accepted"  # the terminal took it (pending order placed)
    REJECTED = "rejected"  # the terminal or broker refused it (MT5 retcode)
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"  # cancel instruction sent, the terminal has not answered
    CANCELED = "canceled"
    EXPIRED = "expired"  # no connector took it in time, or its time in force ran out


TERMINAL: frozenset[OrderStatus] = frozenset(
    {
        OrderStatus.DENIED,
        OrderStatus.REJECTED,
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.EXPIRED,
    }
)

_S = OrderStatus
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    _S.INITIALIZED: frozenset({_S.DENIED, _S.SUBMITTED}),
    _S.SUBMITTED: frozenset(
        {
            _S.ACCEPTED,
            _S.REJECTED,
            _S.PARTIALLY_FILLED,
            _S.FILLED,
            _S.PENDING_CANCEL,
            _S.CANCELED,
            _S.EXPIRED,
        }
    ),
    _S.ACCEPTED: frozenset(
        {_S.PARTIALLY_FILLED, _S.FILLED, _S.PENDING_CANCEL, _S.CANCELED, _S.EXPIRED}
    ),
    _S.PARTIALLY_FILLED: frozenset(
        {_S.PARTIALLY_FILLED, _S.FILLED, _S.PENDING_CANCEL, _S.CANCELED, _S.EXPIRED}
    ),
    # a cancel the terminal refuses puts the order back where it was; a fill may overtake it
    _S.PENDING_CANCEL: frozenset(
        {_S.CANCELED, _S.FILLED, _S.PARTIALLY_FILLED, _S.ACCEPTED, _S.EXPIRED}
    ),
    _S.DENIED: frozenset(),
    _S.REJECTED: frozenset(),
    _S.FILLED: frozenset(),
    _S.CANCELED: frozenset(),
    _S.EXPIRED: frozenset(),
}


class IllegalTransitionError(Exception):
    """A move the table does not allow; the message names both states."""

    def __init__(self, current: OrderStatus, target: OrderStatus) -> None:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (final state)"
        super().__init__(f"an order cannot go from {current} to {target} (allowed: {allowed})")
        self.current = current
        self.target = target


def transition(current: OrderStatus, target: OrderStatus) -> OrderStatus:
    """The one transition function: `target` if the table allows it, else an error."""
    if target not in TRANSITIONS[current]:
        raise IllegalTransitionError(current, target)
    return target


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"


class TimeInForce(StrEnum):
    GTC = "gtc"  # good till canceled
    DAY = "day"  # until the trading day ends at the terminal
    IOC = "ioc"  # immediate or cancel
    FOK = "fok"  # fill or kill


_ACCOUNT = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$"
_CLIENT_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"


class OrderRequest(StorableText):
    """`POST /api/v1/orders`. Prices are in the symbol's quote currency, volume in lots."""

    model_config = ConfigDict(extra="forbid", strict=True)

    client_order_id: str = Field(
        pattern=_CLIENT_ID, description="your id: the same id twice is one order (idempotency)"
    )
    account: str | None = Field(
        default=None,
        pattern=_ACCOUNT,
        description="the connector's terminal name (its `source`); unset: the connector"
        " that authenticated without one",
    )
    symbol: str = Field(pattern=f"^{SYMBOL_PATTERN}$")
    # enums by value: strict mode would demand enum instances, which JSON cannot carry
    side: Side = Field(strict=False)
    type: OrderType = Field(strict=False)
    # bounds are the storage's: numeric(20, 8) lots, numeric(24, 10) prices — a smaller
    # positive value would be stored as 0 and refused by the database
    volume: float = Field(ge=1e-8, le=1e6, description="lots")
    price: float | None = Field(default=None, ge=1e-10, le=1e12, description="limit/stop price")
    sl: float | None = Field(default=None, ge=1e-10, le=1e12, description="stop loss")
    tp: float | None = Field(default=None, ge=1e-10, le=1e12, description="take profit")
    time_in_force: TimeInForce = Field(default=TimeInForce.GTC, strict=False)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        numbers = (self.volume, self.price, self.sl, self.tp)
        if any(v is not None and not math.isfinite(v) for v in numbers):
            raise ValueError("prices and volume must be finite")
        if self.type is OrderType.MARKET and self.price is not None:
            raise ValueError("a market order has no price (it fills at the market)")
        if self.type is not OrderType.MARKET and self.price is None:
            raise ValueError(f"a {self.type} order needs a price")
        if self.type is OrderType.MARKET and self.time_in_force in (
            TimeInForce.GTC,
            TimeInForce.DAY,
        ):
            # a market order never rests: it fills, partly fills or is rejected at once
            self.time_in_force = TimeInForce.IOC
        return self


# what a connector says happened at the terminal (`execution_report` frames)
ReportStatus = ExecutionStatus

REPORT_TARGET: dict[ReportStatus, OrderStatus] = {
    ReportStatus.ACCEPTED: OrderStatus.ACCEPTED,
    ReportStatus.REJECTED: OrderStatus.REJECTED,
    ReportStatus.PARTIALLY_FILLED: OrderStatus.PARTIALLY_FILLED,
    ReportStatus.FILLED: OrderStatus.FILLED,
    ReportStatus.CANCELED: OrderStatus.CANCELED,
    ReportStatus.EXPIRED: OrderStatus.EXPIRED,
}
