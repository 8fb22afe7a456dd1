"""A log cost model — inputs, not claims.

Inputs: daily volume per level (configured, or the router's own byte counters), the retention
policies (hours hot, days warm, days kept), the compression each tier *measured* on our own
records (stored bytes / raw JSON bytes), and unit prices from `prices.yaml`, each with its
source and date. Output: steady-state monthly cost per tier and in total, against a stated
baseline — every level kept 365 days, uncompressed, in one standard tier, with managed ingest —
and the reduction in percent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from aitrading.core.logging.records import LEVELS
from aitrading.core.logging.retention_policy_manager import RetentionPolicy

PRICES_FILE = Path(__file__).with_name("prices.yaml")
DAYS_PER_MONTH = 30.4375
BASELINE_DAYS = 365

# The seed's reference workload: 2 TB a month. Its level mix is our stated assumption.
REFERENCE_MONTHLY_GB = 2048.0
REFERENCE_MIX = {"DEBUG": 0.40, "INFO": 0.45, "WARNING": 0.10, "ERROR": 0.045, "CRITICAL": 0.005}


@dataclass(frozen=True)
class Price:
    value: float
    source: str
    url: str
    as_of: str


@dataclass(frozen=True)
class Ratios:
    """Stored bytes per raw JSON byte, as measured by each tier."""

    hot: float
    warm: float
    cold: float


@dataclass
class CostReport:
    daily_gb: dict[str, float]
    ratios: Ratios
    stored_gb: dict[str, float]
    monthly_cost: dict[str, float]
    total: float
    baseline: float
    baseline_detail: dict[str, float]
    reduction_percent: float
    prices: dict[str, Price]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_prices(path: Path = PRICES_FILE) -> dict[str, Price]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    prices = {name: Price(**entry) for name, entry in data["prices"].items()}
    missing = {
        "hot_gb_month",
        "warm_gb_month",
        "cold_gb_month",
        "standard_gb_month",
        "ingest_gb",
        "self_hosted_ingest_gb",
    } - set(prices)
    if missing:
        raise ValueError(f"{path} lacks prices for {sorted(missing)}")
    return prices


def reference_daily_gb(monthly_gb: float = REFERENCE_MONTHLY_GB) -> dict[str, float]:
    return {lvl: monthly_gb * share / DAYS_PER_MONTH for lvl, share in REFERENCE_MIX.items()}


def estimate(
    daily_gb: dict[str, float],
    policies: dict[str, RetentionPolicy],
    ratios: Ratios,
    prices: dict[str, Price] | None = None,
) -> CostReport:
    prices = prices or load_prices()
    stored = {"hot": 0.0, "warm": 0.0, "cold": 0.0}
    for level in LEVELS:
        volume = daily_gb.get(level, 0.0)
        policy = policies[level]
        hot_days = policy.hot_hours / 24
        stored["hot"] += volume * hot_days * ratios.hot
        stored["warm"] += volume * max(policy.warm_days - hot_days, 0.0) * ratios.warm
        stored["cold"] += volume * max(policy.retention_days - policy.warm_days, 0) * ratios.cold
    monthly_volume = sum(daily_gb.values()) * DAYS_PER_MONTH
    cost = {
        "hot": stored["hot"] * prices["hot_gb_month"].value,
        "warm": stored["warm"] * prices["warm_gb_month"].value,
        "cold": stored["cold"] * prices["cold_gb_month"].value,
        "ingest": monthly_volume * prices["self_hosted_ingest_gb"].value,
    }
    total = sum(cost.values())
    baseline_detail = {
        "storage": sum(daily_gb.values()) * BASELINE_DAYS * prices["standard_gb_month"].value,
        "ingest": monthly_volume * prices["ingest_gb"].value,
    }
    baseline = sum(baseline_detail.values())
    return CostReport(
        daily_gb=daily_gb,
        ratios=ratios,
        stored_gb=stored,
        monthly_cost={k: round(v, 2) for k, v in cost.items()},
        total=round(total, 2),
        baseline=round(baseline, 2),
        baseline_detail={k: round(v, 2) for k, v in baseline_detail.items()},
        reduction_percent=round(100 * (1 - total / baseline), 1) if baseline else 0.0,
        prices=prices,
    )
