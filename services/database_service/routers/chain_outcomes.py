"""Call-chain outcomes: each gateway replica writes its windows, every replica reads the
sums (error rate and latency p99 per chain) — not one replica's memory."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Query

from aitrading.core.market.ticks import MAX_TIME_MSC, MIN_TIME_MSC
from aitrading.services.database_service.deps import (
    ChainOutcomeRepo,
    Db,
    database_call,
    resource_router,
)
from aitrading.services.database_service.models import ChainOutcomesIn, ChainSummary

router = resource_router("chains")


@router.post(
    "/chain-outcomes",
    status_code=201,
    summary="One gateway replica's chain outcomes for one window (a retried window is ignored)",
)
async def add_outcomes(
    body: ChainOutcomesIn, databases: Db, repo: ChainOutcomeRepo
) -> dict[str, int]:
    async with database_call(databases, "postgres", "add_chain_outcomes"):
        return {"stored": await repo.add(body)}


@router.get(
    "/chain-outcomes/summary",
    response_model=list[ChainSummary],
    summary="Every chain over the last window_s seconds (or since since_ms), summed over all"
    " gateway replicas",
)
async def summary(
    databases: Db,
    repo: ChainOutcomeRepo,
    window_s: Annotated[int, Query(ge=1, le=86_400)] = 300,
    since_ms: Annotated[int | None, Query(ge=MIN_TIME_MSC, le=MAX_TIME_MSC)] = None,
) -> list[ChainSummary]:
    now = dt.datetime.now(dt.UTC)
    since = (
        dt.datetime.fromtimestamp(since_ms / 1000, dt.UTC)
        if since_ms is not None
        else now - dt.timedelta(seconds=window_s)
    )
    async with database_call(databases, "postgres", "chain_summary"):
        return await repo.summary(since)
