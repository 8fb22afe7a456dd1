"""MT5 account snapshots (ClickHouse), as the connectors report them."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from aitrading.services.database_service.deps import (
    AccountRepo,
    Db,
    database_call,
    resource_router,
)
from aitrading.services.database_service.models import AccountSnapshot, AccountSnapshots

router = resource_router("accounts")


@router.post("/accounts/snapshots", status_code=201, summary="Store MT5 account snapshots")
async def post_account_snapshots(
    body: AccountSnapshots, databases: Db, repo: AccountRepo
) -> dict[str, int]:
    async with database_call(databases, "clickhouse", "insert_accounts"):
        return {"stored": await repo.insert(body.snapshots)}


@router.get(
    "/accounts/{login}/snapshots",
    response_model=list[AccountSnapshot],
    summary="Latest snapshots of one account, newest first",
)
async def get_account_snapshots(
    login: int,
    databases: Db,
    repo: AccountRepo,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[AccountSnapshot]:
    async with database_call(databases, "clickhouse", "query_accounts"):
        return await repo.latest(login, limit)
