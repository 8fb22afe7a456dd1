"""Retention per log level, stored in PostgreSQL, enforced across all three tiers.

Defaults (days kept in total): DEBUG 7, INFO 30, WARNING 90, ERROR 180, CRITICAL 365, with
hours in the hot tier and days in the warm tier per level. `enforce` is what the operator's
CronJob runs (`aitrading logs enforce`): it migrates by age, sets ClickHouse TTL rules per
level (`DELETE WHERE level = ...`), deletes expired cold files and trims the hot tier — and is
idempotent, so a rerun after a crash only finishes the job.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aitrading.core.logging.records import LEVELS
from aitrading.core.logging.tiered_log_storage import DAY_MS, TierAges, TieredLogStorage

if TYPE_CHECKING:
    import asyncpg


class RetentionPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    level: str = Field(pattern="^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$")
    hot_hours: int = Field(ge=1, le=24 * 30)
    warm_days: int = Field(ge=1, le=3650)
    retention_days: int = Field(ge=1, le=3650)

    @model_validator(mode="after")
    def _ordered(self) -> RetentionPolicy:
        if self.warm_days > self.retention_days:
            raise ValueError(
                f"warm_days ({self.warm_days}) exceeds retention_days ({self.retention_days})"
            )
        if self.hot_hours > self.warm_days * 24:
            raise ValueError(f"hot_hours ({self.hot_hours}) exceeds warm_days in hours")
        return self


DEFAULT_POLICIES: dict[str, RetentionPolicy] = {
    p.level: p
    for p in (
        # Hot (RAM) is the expensive tier: hours there are the main cost lever (docs/logging.md).
        RetentionPolicy(level="DEBUG", hot_hours=1, warm_days=7, retention_days=7),
        RetentionPolicy(level="INFO", hot_hours=2, warm_days=7, retention_days=30),
        RetentionPolicy(level="WARNING", hot_hours=2, warm_days=30, retention_days=90),
        RetentionPolicy(level="ERROR", hot_hours=6, warm_days=30, retention_days=180),
        RetentionPolicy(level="CRITICAL", hot_hours=6, warm_days=30, retention_days=365),
    )
}


def with_retention_days(
    policies: dict[str, RetentionPolicy], days: dict[str, int]
) -> dict[str, RetentionPolicy]:
    """The policies with the total days per level that a TradingStack's
    `logging.retentionDays` sets (the operator passes them to the CronJob); warm days and hot
    hours are shortened where they would exceed the new total."""
    unknown = sorted(set(days) - set(LEVELS))
    if unknown:
        raise ValueError(f"unknown log level(s): {', '.join(unknown)}; levels: {', '.join(LEVELS)}")
    result = dict(policies)
    for level, total in days.items():
        base = policies.get(level, DEFAULT_POLICIES[level])
        warm = min(base.warm_days, total)
        result[level] = RetentionPolicy(
            level=level,
            hot_hours=min(base.hot_hours, warm * 24),
            warm_days=warm,
            retention_days=total,
        )
    return result


def ages(policies: dict[str, RetentionPolicy]) -> TierAges:
    return TierAges(
        hot_hours={lvl: float(p.hot_hours) for lvl, p in policies.items()},
        warm_days={lvl: float(p.warm_days) for lvl, p in policies.items()},
        retention_days={lvl: float(p.retention_days) for lvl, p in policies.items()},
    )


def ttl_clause(policies: dict[str, RetentionPolicy]) -> str:
    """ClickHouse TTL: one `DELETE WHERE level = ...` rule per level."""
    rules = [
        f"toDateTime(ts) + toIntervalDay({int(policies[lvl].retention_days)})"
        f" DELETE WHERE level = '{lvl}'"
        for lvl in LEVELS
    ]
    return "TTL " + ", ".join(rules)


class RetentionStore:
    """Policies in PostgreSQL (`log_retention_policies`), defaults when a level has no row."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def load(self) -> dict[str, RetentionPolicy]:
        rows = await self._pool.fetch(
            "SELECT level, hot_hours, warm_days, retention_days FROM log_retention_policies"
        )
        policies = dict(DEFAULT_POLICIES)
        for row in rows:
            policies[row["level"]] = RetentionPolicy(**dict(row))
        return policies

    async def save(self, policy: RetentionPolicy | dict[str, object]) -> RetentionPolicy:
        valid = (
            policy
            if isinstance(policy, RetentionPolicy)
            else RetentionPolicy.model_validate(policy)
        )
        await self._pool.execute(
            "INSERT INTO log_retention_policies (level, hot_hours, warm_days, retention_days)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (level) DO UPDATE SET"
            " hot_hours = EXCLUDED.hot_hours, warm_days = EXCLUDED.warm_days,"
            " retention_days = EXCLUDED.retention_days, updated_at = now()",
            valid.level,
            valid.hot_hours,
            valid.warm_days,
            valid.retention_days,
        )
        return valid


@dataclass
class EnforcementReport:
    moved_hot_to_warm: int = 0
    moved_warm_to_cold: int = 0
    cold_files_written: int = 0
    cold_files_deleted: int = 0
    hot_trimmed: int = 0
    ttl: str = ""
    details: list[str] = field(default_factory=list)


def enforce(
    storage: TieredLogStorage, policies: dict[str, RetentionPolicy], now: dt.datetime | None = None
) -> EnforcementReport:
    """Migrate by age, apply per-level TTL in ClickHouse, delete expired cold files, trim hot."""
    now_ms = int((now or dt.datetime.now(dt.UTC)).timestamp() * 1000)
    tier_ages = ages(policies)
    migration = storage.migrate(tier_ages, now_ms)
    report = EnforcementReport(
        moved_hot_to_warm=migration.hot_to_warm,
        moved_warm_to_cold=migration.warm_to_cold,
        cold_files_written=migration.cold_files,
        details=list(migration.details),
    )
    clause = ttl_clause(policies)
    storage.warm.apply_ttl(clause)
    report.ttl = clause
    expired = {lvl: now_ms - int(p.retention_days) * DAY_MS for lvl, p in policies.items()}
    for path in storage.cold.delete_older_than(expired):
        report.cold_files_deleted += 1
        report.details.append(f"deleted {path}")
    stale = [
        entry
        for entry, record in storage.hot.scan()
        if record.ts_ms < expired.get(record.level, now_ms)
    ]
    storage.hot.delete(stale)
    report.hot_trimmed = len(stale)
    return report
