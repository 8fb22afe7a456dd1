"""Pre-trade risk: small named rules over one prepared context (SEC 15c3-5 style controls).

Everything a rule needs is gathered first (`RiskContext`: entitlements, the latest tick, the
account snapshot, exposure, counts, the trading state), so the rules themselves are pure
functions — fast, testable one by one, and the same in every replica. The first rule that
denies names itself and says why; the order is then DENIED and never leaves the platform.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from aitrading.core.infrastructure.config_manager import SymbolSpec, TradingEngineSettings
from aitrading.core.security.subscription_validator import Entitlements
from aitrading.services.trading_engine.order_model import OrderRequest, OrderType, Side


class TradingState(StrEnum):
    """Per account and global; the stricter of the two applies (NautilusTrader's model)."""

    ACTIVE = "active"
    REDUCING = "reducing"  # only orders that reduce exposure
    HALTED = "halted"  # the kill switch: nothing new


_STRICTNESS = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


def stricter(a: TradingState, b: TradingState) -> TradingState:
    return a if _STRICTNESS[a] >= _STRICTNESS[b] else b


@dataclass(frozen=True)
class LatestPrice:
    bid: float
    ask: float
    time_msc: int


@dataclass(frozen=True)
class AccountSnapshot:
    """The connector's latest `account_info` (MT5 `account_info()`)."""

    margin_free: float
    leverage: int
    currency: str
    time_msc: int


@dataclass(frozen=True)
class RiskContext:
    order: OrderRequest
    entitlements: Entitlements
    spec: SymbolSpec
    price: LatestPrice | None
    account: AccountSnapshot | None
    position: float  # signed lots in this symbol: open positions plus working orders
    account_volume: float  # absolute lots over all symbols, working orders included
    open_orders: int  # working (non-final) orders of the account
    orders_last_minute: int  # orders the account placed in the last 60 s
    duplicate_of: str | None  # a same-looking order within the duplicate window
    state: TradingState  # the stricter of the account's and the global state
    now_ms: int

    @property
    def reference_price(self) -> float | None:
        """The order's own price, or what a market order would pay now."""
        if self.order.price is not None:
            return self.order.price
        if self.price is None:
            return None
        return self.price.ask if self.order.side is Side.BUY else self.price.bid

    @property
    def signed_volume(self) -> float:
        return self.order.side.sign * self.order.volume

    @property
    def reduces_exposure(self) -> bool:
        """Strictly towards flat: opposite to the position and not beyond it."""
        return (
            self.position != 0
            and math.copysign(1, self.position) != self.order.side.sign
            and self.order.volume <= abs(self.position) + 1e-9
        )


@dataclass(frozen=True)
class Denial:
    rule: str
    message: str


Rule = Callable[[RiskContext, TradingEngineSettings], str | None]


def trading_state(ctx: RiskContext, _: TradingEngineSettings) -> str | None:
    if ctx.state is TradingState.HALTED:
        return "trading is halted (kill switch); no new orders"
    if ctx.state is TradingState.REDUCING and not ctx.reduces_exposure:
        return "trading is reducing-only: this order does not reduce the position"
    return None


def symbol_entitled(ctx: RiskContext, _: TradingEngineSettings) -> str | None:
    if not ctx.entitlements.allows_symbol(ctx.order.symbol):
        return f"your plan does not include {ctx.order.symbol}"
    return None


def lot_size(ctx: RiskContext, _: TradingEngineSettings) -> str | None:
    spec, volume = ctx.spec, ctx.order.volume
    if volume < spec.volume_min - 1e-9 or volume > spec.volume_max + 1e-9:
        return f"volume {volume:g} outside {spec.volume_min:g}..{spec.volume_max:g} lots"
    steps = volume / spec.volume_step
    if abs(steps - round(steps)) > 1e-6:
        return f"volume {volume:g} is not a multiple of the lot step {spec.volume_step:g}"
    return None


def price_band(ctx: RiskContext, limits: TradingEngineSettings) -> str | None:
    if ctx.price is None or ctx.now_ms - ctx.price.time_msc > limits.max_tick_age_s * 1000:
        return f"no recent price for {ctx.order.symbol} to check the order against"
    if ctx.order.type is OrderType.MARKET or ctx.order.price is None:
        return None
    mid = (ctx.price.bid + ctx.price.ask) / 2
    distance = abs(ctx.order.price - mid) / mid * 100
    if distance > limits.price_band_pct:
        return (
            f"price {ctx.order.price:g} is {distance:.2f}% from the market ({mid:g});"
            f" the band is {limits.price_band_pct:g}%"
        )
    return None


def max_notional(ctx: RiskContext, limits: TradingEngineSettings) -> str | None:
    price = ctx.reference_price
    if price is None:
        return None  # price_band already denied it
    notional = ctx.order.volume * ctx.spec.contract_size * price
    if notional > limits.max_order_notional:
        return f"notional {notional:,.0f} exceeds {limits.max_order_notional:,.0f} per order"
    return None


def max_position(ctx: RiskContext, limits: TradingEngineSettings) -> str | None:
    after = ctx.position + ctx.signed_volume
    if abs(after) > limits.max_position_volume + 1e-9 and abs(after) > abs(ctx.position):
        return (
            f"position in {ctx.order.symbol} would be {after:g} lots;"
            f" the limit is {limits.max_position_volume:g}"
        )
    return None


def max_account_volume(ctx: RiskContext, limits: TradingEngineSettings) -> str | None:
    if ctx.reduces_exposure:
        return None
    after = ctx.account_volume + ctx.order.volume
    if after > limits.max_account_volume + 1e-9:
        return (
            f"account exposure would be {after:g} lots; the limit is {limits.max_account_volume:g}"
        )
    return None


def max_open_orders(ctx: RiskContext, limits: TradingEngineSettings) -> str | None:
    if ctx.open_orders >= limits.max_open_orders:
        return f"{ctx.open_orders} orders are working; the limit is {limits.max_open_orders}"
    return None


def order_rate(ctx: RiskContext, limits: TradingEngineSettings) -> str | None:
    if ctx.orders_last_minute >= limits.orders_per_minute:
        count, limit = ctx.orders_last_minute, limits.orders_per_minute
        return f"{count} orders in the last minute; the limit is {limit}"
    return None


def duplicate_order(ctx: RiskContext, limits: TradingEngineSettings) -> str | None:
    if ctx.duplicate_of is not None:
        return (
            f"the same order ({ctx.duplicate_of}) was placed less than"
            f" {limits.duplicate_window_s:g} s ago; use a new price or volume, or wait"
        )
    return None


def free_margin(ctx: RiskContext, limits: TradingEngineSettings) -> str | None:
    if not limits.check_free_margin or ctx.reduces_exposure:
        return None
    if ctx.account is None:
        return "no account snapshot from the connector yet: free margin unknown"
    price = ctx.reference_price
    if price is None:
        return None
    required = ctx.order.volume * ctx.spec.contract_size * price / max(ctx.account.leverage, 1)
    if required > ctx.account.margin_free:
        return (
            f"margin {required:,.2f} exceeds free margin"
            f" {ctx.account.margin_free:,.2f} {ctx.account.currency}"
        )
    return None


# In order: the cheapest and the most fundamental first; the first denial wins.
RULES: tuple[tuple[str, Rule], ...] = (
    ("trading_state", trading_state),
    ("symbol_entitled", symbol_entitled),
    ("lot_size", lot_size),
    ("duplicate_order", duplicate_order),
    ("order_rate", order_rate),
    ("max_open_orders", max_open_orders),
    ("price_band", price_band),
    ("max_notional", max_notional),
    ("max_position", max_position),
    ("max_account_volume", max_account_volume),
    ("free_margin", free_margin),
)


def check(ctx: RiskContext, limits: TradingEngineSettings) -> Denial | None:
    """The first rule that denies this order, or None when every rule passes."""
    for name, rule in RULES:
        message = rule(ctx, limits)
        if message is not None:
            return Denial(name, message)
    return None
