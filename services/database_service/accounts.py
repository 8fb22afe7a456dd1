"""MT5 account snapshots (balance, equity, margin) in ClickHouse."""

from __future__ import annotations

from typing import Any

from aitrading.core.stores.clickhouse import ClickHouseStore
from aitrading.services.database_service.models import AccountSnapshot

COLUMNS = (
    "source",
    "login",
    "time",
    "currency",
    "leverage",
    "balance",
    "equity",
    "margin",
    "margin_free",
    "margin_level",
    "profit",
)


class AccountRepository:
    def __init__(self, store: ClickHouseStore) -> None:
        self._store = store

    async def insert(self, snapshots: list[AccountSnapshot]) -> int:
        columns: list[list[Any]] = [[] for _ in COLUMNS]
        for s in snapshots:
            values = (
                s.source,
                s.login,
                s.time_msc,
                s.currency,
                s.leverage,
                s.balance,
                s.equity,
                s.margin,
                s.margin_free,
                s.margin_level,
                s.profit,
            )
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        await self._store.run(
            self._store.client.insert,
            "account_info",
            columns,
            column_names=list(COLUMNS),
            column_oriented=True,
        )
        return len(snapshots)

    async def latest(self, login: int, limit: int) -> list[AccountSnapshot]:
        rows = await self._store.query_rows(
            "SELECT source, login, toUnixTimestamp64Milli(time), currency, leverage, balance,"
            " equity, margin, margin_free, margin_level, profit FROM account_info FINAL"
            " WHERE login = %(login)s ORDER BY time DESC LIMIT %(limit)s",
            {"login": login, "limit": limit},
        )
        return [
            AccountSnapshot(
                source=r[0],
                login=int(r[1]),
                time_msc=int(r[2]),
                currency=r[3],
                leverage=int(r[4]),
                balance=r[5],
                equity=r[6],
                margin=r[7],
                margin_free=r[8],
                margin_level=r[9],
                profit=r[10],
            )
            for r in rows
        ]
