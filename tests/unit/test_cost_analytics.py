from __future__ import annotations

import pytest

from aitrading.core.logging.cost_analytics import (
    REFERENCE_MIX,
    Ratios,
    estimate,
    load_prices,
    reference_daily_gb,
)
from aitrading.core.logging.retention_policy_manager import DEFAULT_POLICIES, RetentionPolicy


def test_every_price_cites_a_source_and_a_date() -> None:
    for name, price in load_prices().items():
        assert price.source, name
        assert price.as_of, name
        assert price.value >= 0, name


def test_the_model_follows_its_inputs() -> None:
    policies = {
        lvl: RetentionPolicy(level=lvl, hot_hours=24, warm_days=10, retention_days=100)
        for lvl in DEFAULT_POLICIES
    }
    daily = {lvl: 0.0 for lvl in DEFAULT_POLICIES}
    daily["INFO"] = 10.0
    report = estimate(daily, policies, Ratios(hot=1.0, warm=0.1, cold=0.2))
    prices = report.prices
    assert report.stored_gb["hot"] == pytest.approx(10.0)  # 1 day of 10 GB
    assert report.stored_gb["warm"] == pytest.approx(10 * 9 * 0.1)  # days 1-10, compressed
    assert report.stored_gb["cold"] == pytest.approx(10 * 90 * 0.2)  # days 10-100
    assert report.monthly_cost["hot"] == pytest.approx(
        10.0 * prices["hot_gb_month"].value, abs=0.01
    )
    assert report.baseline_detail["storage"] == pytest.approx(
        10 * 365 * prices["standard_gb_month"].value, abs=0.01
    )
    assert 0 < report.reduction_percent < 100
    worse = estimate(daily, policies, Ratios(hot=2.0, warm=0.5, cold=0.9))
    assert worse.total > report.total  # worse measured compression costs more


def test_reference_workload_is_two_terabytes_a_month() -> None:
    assert sum(REFERENCE_MIX.values()) == pytest.approx(1.0)
    assert sum(reference_daily_gb().values()) * 30.4375 == pytest.approx(2048)
