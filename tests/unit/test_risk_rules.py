"""Each pre-trade rule denies exactly when it should: a context that passes every rule, then
one change per rule that only that rule refuses (and the boundary it still allows)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from aitrading.core.infrastructure.config_manager import SymbolSpec, TradingEngineSettings
from aitrading.core.security.subscription_validator import Entitlements
from aitrading.services.trading_engine.order_model import OrderRequest
from aitrading.services.trading_engine.risk_rules import (
    RULES,
    AccountSnapshot,
    LatestPrice,
    RiskContext,
    TradingState,
    check,
    stricter,
)

NOW = 1_800_000_000_000
LIMITS = TradingEngineSettings(
    max_order_notional=1_000_000,
    max_position_volume=5,
    max_account_volume=10,
    max_open_orders=3,
    orders_per_minute=10,
    price_band_pct=2,
    max_tick_age_s=60,
)


def request(**fields: Any) -> OrderRequest:
    body = {
        "client_order_id": "c1",
        "symbol": "EURUSD",
        "side": "buy",
        "type": "market",
        "volume": 1.0,
        **fields,
    }
    return OrderRequest.model_validate(body)


def context(**changes: Any) -> RiskContext:
    base = RiskContext(
        order=request(),
        entitlements=Entitlements(symbols=("EUR*",), max_streams=1, features=frozenset()),
        spec=SymbolSpec(volume_min=0.01, volume_max=50, volume_step=0.01, contract_size=100_000),
        price=LatestPrice(1.0999, 1.1001, NOW - 1000),
        account=AccountSnapshot(margin_free=2_000.0, leverage=100, currency="USD", time_msc=NOW),
        position=0.0,
        account_volume=0.0,
        open_orders=0,
        orders_last_minute=0,
        duplicate_of=None,
        state=TradingState.ACTIVE,
        now_ms=NOW,
    )
    return dataclasses.replace(base, **changes)


def test_the_base_context_passes_every_rule() -> None:
    assert check(context(), LIMITS) is None


CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    # rule, change that denies, nearest change that is still allowed
    ("trading_state", {"state": TradingState.HALTED}, {"state": TradingState.ACTIVE}),
    (
        "trading_state",
        {"state": TradingState.REDUCING, "position": 0.5},  # buying 1 on a long: not reducing
        {"state": TradingState.REDUCING, "position": -1.0},  # buying 1 on a 1-lot short: reduces
    ),
    ("symbol_entitled", {"order": request(symbol="GBPUSD")}, {"order": request(symbol="EURGBP")}),
    ("lot_size", {"order": request(volume=0.015)}, {"order": request(volume=0.02)}),
    ("lot_size", {"order": request(volume=51)}, {"order": request(volume=0.01)}),
    ("duplicate_order", {"duplicate_of": "abc"}, {"duplicate_of": None}),
    ("order_rate", {"orders_last_minute": 10}, {"orders_last_minute": 9}),
    ("max_open_orders", {"open_orders": 3}, {"open_orders": 2}),
    ("price_band", {"price": None}, {}),
    ("price_band", {"price": LatestPrice(1.0999, 1.1001, NOW - 61_000)}, {}),
    (
        "price_band",
        {"order": request(type="limit", price=1.13, time_in_force="gtc")},  # 2.7% away
        {"order": request(type="limit", price=1.12, time_in_force="gtc")},  # 1.8% away
    ),
    (
        "max_notional",
        {"order": request(volume=9.1)},  # 9.1 x 100,000 x 1.1001 > 1,000,000
        {"order": request(volume=9.0), "account": None, "position": -9.0},
    ),
    ("max_position", {"position": 4.5}, {"position": 4.0}),
    ("max_account_volume", {"account_volume": 9.5}, {"account_volume": 9.0}),
    (
        "free_margin",
        {"account": AccountSnapshot(1_000.0, 100, "USD", NOW)},  # needs 1,100.10
        {"account": AccountSnapshot(1_100.2, 100, "USD", NOW)},
    ),
    ("free_margin", {"account": None}, {"account": None, "position": -1.0}),
]


@pytest.mark.parametrize(("rule", "denying", "allowed"), CASES)
def test_each_rule_denies_exactly_when_it_should(
    rule: str, denying: dict[str, Any], allowed: dict[str, Any]
) -> None:
    denial = check(context(**denying), LIMITS)
    assert denial is not None
    assert denial.rule == rule
    assert denial.message
    assert check(context(**allowed), LIMITS) is None


def test_every_rule_is_covered_and_named_once() -> None:
    names = [name for name, _ in RULES]
    assert len(names) == len(set(names))
    assert {rule for rule, _, _ in CASES} == set(names)


def test_the_stricter_state_applies() -> None:
    assert stricter(TradingState.ACTIVE, TradingState.HALTED) is TradingState.HALTED
    assert stricter(TradingState.REDUCING, TradingState.ACTIVE) is TradingState.REDUCING
    assert stricter(TradingState.REDUCING, TradingState.HALTED) is TradingState.HALTED


def test_free_margin_can_be_switched_off() -> None:
    relaxed = LIMITS.model_copy(update={"check_free_margin": False})
    assert check(context(account=None), relaxed) is None
