"""The order state machine: the one transition function allows exactly the table."""

from __future__ import annotations

import itertools

import pytest
from pydantic import ValidationError

from aitrading.services.trading_engine.order_model import (
    TERMINAL,
    TRANSITIONS,
    IllegalTransitionError,
    OrderRequest,
    OrderStatus,
    TimeInForce,
    transition,
)


@pytest.mark.parametrize(("current", "target"), list(itertools.product(OrderStatus, OrderStatus)))
def test_every_pair_is_allowed_exactly_when_the_table_says(
    current: OrderStatus, target: OrderStatus
) -> None:
    if target in TRANSITIONS[current]:
        assert transition(current, target) is target
    else:
        with pytest.raises(IllegalTransitionError) as refused:
            transition(current, target)
        assert str(current) in str(refused.value)
        assert str(target) in str(refused.value)


def test_final_states_have_no_way_out_and_every_other_state_reaches_one() -> None:
    assert all(not TRANSITIONS[s] for s in TERMINAL)
    for state in OrderStatus:
        seen, frontier = {state}, [state]
        while frontier:
            for nxt in TRANSITIONS[frontier.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
        assert seen & TERMINAL, f"{state} can never finish"


def _order(**fields: object) -> dict[str, object]:
    return {"client_order_id": "c1", "symbol": "EURUSD", "side": "buy", "volume": 0.1, **fields}


def test_order_requests_are_consistent() -> None:
    market = OrderRequest.model_validate(_order(type="market"))
    assert market.time_in_force is TimeInForce.IOC  # a market order never rests
    assert OrderRequest.model_validate(_order(type="limit", price=1.08)).price == 1.08
    for bad in (
        _order(type="market", price=1.0),  # a market order has no price
        _order(type="limit"),  # a limit order needs one
        _order(type="stop", price=float("inf")),
        _order(type="market", volume=0),
        _order(type="market", volume=5e-324),  # positive, but stored as 0
        _order(type="market", symbol="EUR USD"),
        _order(type="market", client_order_id="bad id"),
        _order(type="market", account="a\x00b"),
        _order(type="market", surprise=1),
        _order(type="market", volume="1"),  # strict: no strings for numbers
    ):
        with pytest.raises(ValidationError):
            OrderRequest.model_validate(bad)
