from __future__ import annotations

import datetime as dt

import pytest

from aitrading.core.security.subscription_validator import (
    DEFAULT_PLANS,
    Entitlements,
    InvalidRecordError,
    Status,
    Subscription,
    Tier,
    _validated,
    effective,
)

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
FREE, PRO = DEFAULT_PLANS["free"], DEFAULT_PLANS["pro"]


def sub(status: Status, period_end: dt.datetime, grace_s: int = 3600) -> Subscription:
    return Subscription(
        user_id="u",
        plan_id="pro",
        status=status,
        current_period_end=period_end,
        grace_period_s=grace_s,
        entitlement_version=4,
    )


@pytest.mark.parametrize(
    ("status", "period_end", "tier"),
    [
        (Status.ACTIVE, NOW + dt.timedelta(days=3), Tier.PRO),
        (Status.TRIALING, NOW + dt.timedelta(days=3), Tier.PRO),
        (Status.PAST_DUE, NOW - dt.timedelta(minutes=30), Tier.PRO),  # inside the grace period
        (Status.PAST_DUE, NOW - dt.timedelta(hours=2), Tier.FREE),  # grace over
        (Status.CANCELED, NOW + dt.timedelta(days=3), Tier.FREE),
        (Status.UNPAID, NOW + dt.timedelta(days=3), Tier.FREE),
    ],
)
def test_status_decides_what_is_granted(
    status: Status, period_end: dt.datetime, tier: Tier
) -> None:
    result = effective("u", sub(status, period_end), PRO, FREE, NOW)
    assert result.tier is tier
    assert result.status is status
    assert result.entitlement_version == 4


def test_no_subscription_means_the_free_plan() -> None:
    result = effective("nobody", None, None, FREE, NOW)
    assert result.tier is Tier.FREE
    assert result.entitlements.allows_symbol("EURUSD")
    assert not result.entitlements.allows_symbol("XAUUSD")


def test_symbol_patterns() -> None:
    ent = Entitlements(symbols=("EUR*", "XAUUSD"), max_streams=1)
    assert ent.allows_symbol("EURJPY")
    assert ent.allows_symbol("XAUUSD")
    assert not ent.allows_symbol("GBPUSD")


@pytest.mark.parametrize(
    ("record", "fragment"),
    [
        (
            {"id": "x", "tier": "platinum", "entitlements": {"symbols": ["*"], "max_streams": 1}},
            "tier",
        ),
        (
            {"id": "x", "tier": "pro", "entitlements": {"symbols": ["EUR USD;"], "max_streams": 1}},
            "symbol",
        ),
        (
            {"id": "x", "tier": "pro", "entitlements": {"symbols": ["*"], "max_streams": -1}},
            "max_streams",
        ),
        ({"id": "X Y", "tier": "pro", "entitlements": {"symbols": ["*"], "max_streams": 1}}, "id"),
        ({"id": "x", "tier": "pro", "entitlements": {"symbols": [], "max_streams": 1}}, "symbols"),
    ],
)
def test_garbage_plans_are_refused_with_the_field(record: dict[str, object], fragment: str) -> None:
    from aitrading.core.security.subscription_validator import Plan

    with pytest.raises(InvalidRecordError, match=fragment):
        _validated(Plan, record)


def test_garbage_subscriptions_are_refused() -> None:
    with pytest.raises(InvalidRecordError, match="status"):
        _validated(
            Subscription,
            {
                "user_id": "u",
                "plan_id": "pro",
                "status": "lifetime",
                "current_period_end": NOW.isoformat(),
            },
        )
    with pytest.raises(InvalidRecordError, match="time zone"):
        _validated(
            Subscription,
            {
                "user_id": "u",
                "plan_id": "pro",
                "status": "active",
                "current_period_end": "2026-12-01T00:00:00",
            },
        )
