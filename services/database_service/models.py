"""Typed request and response bodies of database-service: the only shape data takes here."""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aitrading.core.infrastructure.latency_histogram import BOUNDS_MS, BUCKETS
from aitrading.core.market.ticks import (
    MAX_TIME_MSC,
    MIN_TIME_MSC,
    SOURCE_PATTERN,
    SYMBOL_PATTERN,
)
from aitrading.services.common.text import StorableText

# Anchored for pydantic (Rust regex: `$` is the very end, no newline allowed before it).
SYMBOL_FIELD = f"^{SYMBOL_PATTERN}$"
SOURCE_FIELD = f"^{SOURCE_PATTERN}$"

Price = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _Strict(BaseModel):
    # strict: JSON `false` is not a price, `"1"` is not a count (what the schema says).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class _Stored(_Strict, StorableText):
    """A body with free text that goes to a database: every string is checked storable.
    (Ticks are not: their strings are pattern-checked ASCII, and they are the hot path.)"""


class TickBatchResult(_Strict):
    received: int
    new: int
    duplicates: int


Timeframe = Literal["1m", "5m", "15m", "30m", "1h", "4h", "1d"]
TIMEFRAME_MINUTES: dict[str, int] = {
    "1m": 1,
    "5m": 5,
    "15m": 15,
    "30m": 30,
    "1h": 60,
    "4h": 240,
    "1d": 1440,
}


class Bar(_Strict):
    time: dt.datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    ticks: int


class Bars(_Strict):
    symbol: str
    timeframe: Timeframe
    bars: list[Bar]


class AccountSnapshot(_Stored):
    source: str = Field(pattern=SOURCE_FIELD)
    login: int = Field(ge=1, le=2**63 - 1)
    time_msc: int = Field(ge=MIN_TIME_MSC, le=MAX_TIME_MSC)
    currency: str = Field(pattern=r"^[A-Z]{3,5}$")
    leverage: int = Field(ge=1, le=100_000)
    balance: float = Field(allow_inf_nan=False)
    equity: float = Field(allow_inf_nan=False)
    margin: float = Field(ge=0, allow_inf_nan=False)
    margin_free: float = Field(allow_inf_nan=False)
    margin_level: float = Field(ge=0, allow_inf_nan=False)
    profit: float = Field(allow_inf_nan=False)


class AccountSnapshots(_Strict):
    snapshots: list[AccountSnapshot] = Field(min_length=1, max_length=10_000)


class ChainStep(_Stored):
    service: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")
    operation: str = Field(min_length=1, max_length=200)


class ChainDefinitionIn(_Stored):
    name: str = Field(min_length=1, max_length=200)
    entry_service: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")
    steps: list[ChainStep] = Field(min_length=1, max_length=100)
    sla_p99_ms: int | None = Field(default=None, gt=0, le=600_000)


class ChainDefinition(ChainDefinitionIn):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,127}$")
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime


class ChainOutcome(_Strict):
    """One chain's requests in one window of one gateway replica."""

    chain_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,127}$")
    requests: int = Field(gt=0, le=1_000_000_000)
    errors: int = Field(ge=0, le=1_000_000_000)
    latency_buckets: list[Annotated[int, Field(ge=0, le=1_000_000_000)]] = Field(
        min_length=BUCKETS,
        max_length=BUCKETS,
        description=f"requests per latency bucket, bounds (ms) {list(BOUNDS_MS)} then above",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ChainOutcome:
        if self.errors > self.requests:
            raise ValueError("errors cannot exceed requests")
        if sum(self.latency_buckets) != self.requests:
            raise ValueError("latency_buckets must add up to requests")
        return self


class ChainOutcomesIn(_Stored):
    replica: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,252}$")
    window_end_ms: int = Field(ge=MIN_TIME_MSC, le=MAX_TIME_MSC)
    outcomes: list[ChainOutcome] = Field(min_length=1, max_length=1000)


class ChainSummary(_Strict):
    """A chain over the last window, summed over every gateway replica."""

    id: str
    name: str
    services: list[str]
    requests: int
    error_rate: float
    latency_p99_ms: float
    replicas: int
    status: Literal["healthy", "unhealthy"]


class ErrorGroupOut(_Strict):
    fingerprint: str
    service: str
    exception_type: str
    category: str
    retryable: bool
    recovery_hints: list[str]
    sample: str
    count: int
    first_seen: dt.datetime
    last_seen: dt.datetime


class SimilarErrorGroup(_Strict):
    fingerprint: str
    service: str
    exception_type: str
    category: str
    distance: float

    @field_validator("distance")
    @classmethod
    def _finite(cls, value: float) -> float:
        return value if math.isfinite(value) else 2.0


class ErrorOccurrenceIn(_Stored):
    """An analysed error (ErrorDNA.analyze) reported by a service."""

    fingerprint: str = Field(pattern=r"^[0-9a-f]{32}$")
    service: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")
    exception_type: str = Field(min_length=1, max_length=300)
    category: Literal["database", "network", "validation", "auth", "mt5", "config", "internal"]
    retryable: bool
    message: str = Field(max_length=4000)
    sample: str = Field(max_length=4000)
    signature: dict[str, object]
    occurred_at: float = Field(gt=0)
