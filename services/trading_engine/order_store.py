"""Orders in PostgreSQL: every transition, its event and its audit record in one transaction.

The row in `orders` is the current state; `order_events` (append-only) is its history, one row
per transition with a per-order version; the audit log gets the same fact, chained and signed.
All three commit together or not at all, so a crash between them cannot leave an order whose
history or audit trail disagrees with it — and a restart resumes from here.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg

from aitrading.core.security.audit_logger import AuditLog, Connection
from aitrading.services.trading_engine.order_model import (
    TERMINAL,
    OrderRequest,
    OrderStatus,
    transition,
)
from aitrading.services.trading_engine.risk_rules import TradingState

WORKING = tuple(s.value for s in OrderStatus if s not in TERMINAL)
GLOBAL_SCOPE = "global"


def _dec(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _num(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class Order:
    id: str
    client_order_id: str
    user_id: str
    account: str
    target: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    volume: float
    price: float | None
    sl: float | None
    tp: float | None
    status: OrderStatus
    filled_volume: float
    avg_fill_price: float | None
    ticket: int | None
    retcode: int | None
    denied_by: str | None
    reason: str | None
    instruction: str | None
    instruction_entry: str | None
    instruction_expires_at: dt.datetime | None
    reported: bool
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Order:
        return cls(
            id=row["id"],
            client_order_id=row["client_order_id"],
            user_id=row["user_id"],
            account=row["account"],
            target=row["target"],
            symbol=row["symbol"],
            side=row["side"],
            type=row["type"],
            time_in_force=row["time_in_force"],
            volume=float(row["volume"]),
            price=_num(row["price"]),
            sl=_num(row["sl"]),
            tp=_num(row["tp"]),
            status=OrderStatus(row["status"]),
            filled_volume=float(row["filled_volume"]),
            avg_fill_price=_num(row["avg_fill_price"]),
            ticket=row["ticket"],
            retcode=row["retcode"],
            denied_by=row["denied_by"],
            reason=row["reason"],
            instruction=row["instruction"],
            instruction_entry=row["instruction_entry"],
            instruction_expires_at=row["instruction_expires_at"],
            reported=row["reported"],
            version=row["version"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    def public(self) -> dict[str, Any]:
        """What the owner sees (the signed instruction and queue bookkeeping stay inside)."""
        return {
            "id": self.id,
            "client_order_id": self.client_order_id,
            "account": self.account or None,
            "symbol": self.symbol,
            "side": self.side,
            "type": self.type,
            "time_in_force": self.time_in_force,
            "volume": self.volume,
            "price": self.price,
            "sl": self.sl,
            "tp": self.tp,
            "status": self.status.value,
            "filled_volume": self.filled_volume,
            "avg_fill_price": self.avg_fill_price,
            "ticket": self.ticket,
            "retcode": self.retcode,
            "denied_by": self.denied_by,
            "reason": self.reason,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


# Columns a transition may set besides the status (never the identity of the order).
_MUTABLE = frozenset(
    {
        "filled_volume",
        "avg_fill_price",
        "ticket",
        "retcode",
        "denied_by",
        "reason",
        "instruction",
        "instruction_entry",
        "instruction_expires_at",
        "reported",
    }
)


class UnknownOrderError(LookupError):
    pass


@dataclass(frozen=True)
class Exposure:
    position: float
    account_volume: float
    open_orders: int
    orders_last_minute: int
    duplicate_of: str | None


class OrderStore:
    def __init__(self, pool: asyncpg.Pool, audit: AuditLog) -> None:
        self._pool = pool
        self._audit = audit

    async def create(
        self, order_id: str, user_id: str, target: str, request: OrderRequest
    ) -> tuple[Order, bool]:
        """The new order in INITIALIZED (and True), or the existing one with the same
        `client_order_id` (and False): resubmitting is idempotent."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "INSERT INTO orders (id, client_order_id, user_id, account, target, symbol, side,"
                " type, time_in_force, volume, price, sl, tp, status) VALUES ($1, $2, $3, $4,"
                " $5, $6, $7, $8, $9, $10, $11, $12, $13, 'initialized')"
                " ON CONFLICT (user_id, client_order_id) DO NOTHING RETURNING *",
                order_id,
                request.client_order_id,
                user_id,
                request.account or "",
                target,
                request.symbol,
                request.side.value,
                request.type.value,
                request.time_in_force.value,
                Decimal(str(request.volume)),
                *(_dec(v) for v in (request.price, request.sl, request.tp)),
            )
            if row is None:
                existing = await conn.fetchrow(
                    "SELECT * FROM orders WHERE user_id = $1 AND client_order_id = $2",
                    user_id,
                    request.client_order_id,
                )
                assert existing is not None
                return Order.from_row(existing), False
            details = request.model_dump(mode="json")
            await self._event(conn, order_id, 1, None, OrderStatus.INITIALIZED, user_id, details)
            await self._audit.append(
                user_id, "order.initialized", f"orders/{order_id}", "success", details, conn=conn
            )
            return Order.from_row(row), True

    async def move(
        self,
        order_id: str,
        target: OrderStatus,
        actor: str,
        details: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Order:
        """Transition one order (row locked), with its event and audit record, atomically.

        Raises `IllegalTransitionError` (nothing written) when the table forbids the move."""
        unknown = set(fields) - _MUTABLE
        if unknown:
            raise ValueError(f"not settable on a transition: {sorted(unknown)}")
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow("SELECT * FROM orders WHERE id = $1 FOR UPDATE", order_id)
            if row is None:
                raise UnknownOrderError(order_id)
            current = OrderStatus(row["status"])
            transition(current, target)
            version = row["version"] + 1
            assignments = ["status = $2", "version = $3", "updated_at = now()"]
            values: list[Any] = [order_id, target.value, version]
            for name, value in fields.items():
                values.append(Decimal(str(value)) if isinstance(value, float) else value)
                assignments.append(f"{name} = ${len(values)}")
            updated = await conn.fetchrow(
                f"UPDATE orders SET {', '.join(assignments)} WHERE id = $1 RETURNING *",  # noqa: S608 - names from _MUTABLE
                *values,
            )
            payload = {**(details or {}), "from": current.value, "to": target.value}
            await self._event(conn, order_id, version, current, target, actor, payload)
            await self._audit.append(
                actor, f"order.{target.value}", f"orders/{order_id}", "success", payload, conn=conn
            )
            assert updated is not None
            return Order.from_row(updated)

    async def annotate(self, order_id: str, **fields: Any) -> None:
        """Queue bookkeeping that is not a state change (the stream entry of an instruction)."""
        unknown = set(fields) - {"instruction_entry"}
        if unknown:
            raise ValueError(f"not annotatable: {sorted(unknown)}")
        await self._pool.execute(
            "UPDATE orders SET instruction_entry = $2 WHERE id = $1",
            order_id,
            fields["instruction_entry"],
        )

    @staticmethod
    async def _event(
        conn: Connection,
        order_id: str,
        version: int,
        current: OrderStatus | None,
        target: OrderStatus,
        actor: str,
        details: dict[str, Any],
    ) -> None:
        await conn.execute(
            "INSERT INTO order_events (order_id, version, from_status, to_status, actor, details)"
            " VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
            order_id,
            version,
            current.value if current else None,
            target.value,
            actor,
            json.dumps(details),
        )

    async def get(self, order_id: str) -> Order | None:
        row = await self._pool.fetchrow("SELECT * FROM orders WHERE id = $1", order_id)
        return None if row is None else Order.from_row(row)

    async def of_user(self, user_id: str, limit: int, status: OrderStatus | None) -> list[Order]:
        rows = await self._pool.fetch(
            "SELECT * FROM orders WHERE user_id = $1 AND ($2::text IS NULL OR status = $2)"
            " ORDER BY created_at DESC, id LIMIT $3",
            user_id,
            status.value if status else None,
            limit,
        )
        return [Order.from_row(r) for r in rows]

    async def events(self, order_id: str) -> list[dict[str, Any]]:
        rows = await self._pool.fetch(
            "SELECT version, from_status, to_status, at, actor, details FROM order_events"
            " WHERE order_id = $1 ORDER BY version",
            order_id,
        )
        return [
            {
                "version": r["version"],
                "from": r["from_status"],
                "to": r["to_status"],
                "at": r["at"].isoformat(),
                "actor": r["actor"],
                "details": json.loads(r["details"]),
            }
            for r in rows
        ]

    async def exposure(
        self, target: str, symbol: str, request: OrderRequest, exclude: str, window_s: float
    ) -> Exposure:
        """What the risk rules need about the account, in one round trip."""
        row = await self._pool.fetchrow(
            """
            WITH working AS (
                SELECT symbol, CASE side WHEN 'buy' THEN 1 ELSE -1 END
                       * (volume - filled_volume) AS signed
                FROM orders WHERE target = $1 AND id <> $2 AND status = ANY($3::text[])
            ), held AS (
                SELECT symbol, CASE side WHEN 'buy' THEN 1 ELSE -1 END * volume AS signed
                FROM positions WHERE target = $1
            ), every AS (SELECT * FROM working UNION ALL SELECT * FROM held)
            SELECT
                (SELECT coalesce(sum(signed), 0) FROM every WHERE symbol = $4) AS position,
                (SELECT coalesce(sum(abs(signed)), 0) FROM every) AS account_volume,
                (SELECT count(*) FROM working) AS open_orders,
                (SELECT count(*) FROM orders WHERE target = $1 AND id <> $2
                    AND created_at > now() - interval '60 seconds') AS last_minute,
                (SELECT id FROM orders WHERE target = $1 AND id <> $2 AND symbol = $4
                    AND side = $5 AND type = $6 AND volume = $7
                    AND price IS NOT DISTINCT FROM $8 AND status <> 'denied'
                    AND created_at > now() - make_interval(secs => $9)
                    ORDER BY created_at DESC LIMIT 1) AS duplicate_of
            """,
            target,
            exclude,
            list(WORKING),
            symbol,
            request.side.value,
            request.type.value,
            Decimal(str(request.volume)),
            None if request.price is None else Decimal(str(request.price)),
            window_s,
        )
        assert row is not None
        return Exposure(
            float(row["position"]),
            float(row["account_volume"]),
            int(row["open_orders"]),
            int(row["last_minute"]),
            row["duplicate_of"],
        )

    async def unanswered_past(self, cutoff: dt.datetime) -> list[Order]:
        """Orders no connector has answered whose instruction is void at `cutoff`."""
        rows = await self._pool.fetch(
            "SELECT * FROM orders WHERE status IN ('submitted', 'pending_cancel')"
            " AND NOT reported AND instruction_expires_at < $1 ORDER BY created_at",
            cutoff,
        )
        return [Order.from_row(r) for r in rows]

    async def awaiting_connector(self) -> list[Order]:
        """Orders whose instruction may still be delivered (resumed after a restart)."""
        rows = await self._pool.fetch(
            "SELECT * FROM orders WHERE status IN ('submitted', 'pending_cancel')"
            " AND instruction IS NOT NULL AND instruction_expires_at > now()"
        )
        return [Order.from_row(r) for r in rows]

    # positions -------------------------------------------------------------------------

    async def replace_positions(
        self, target: str, user_id: str, login: int, positions: list[dict[str, Any]]
    ) -> None:
        """A connector's `positions` frame is the account's whole set: replace it."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "DELETE FROM positions WHERE target = $1 AND NOT (ticket = ANY($2::bigint[]))",
                target,
                [p["ticket"] for p in positions],
            )
            await conn.executemany(
                "INSERT INTO positions (target, ticket, user_id, login, symbol, side, volume,"
                " price_open, price_current, profit) VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
                " $9, $10) ON CONFLICT (target, ticket) DO UPDATE SET volume = EXCLUDED.volume,"
                " price_current = EXCLUDED.price_current, profit = EXCLUDED.profit,"
                " login = EXCLUDED.login, updated_at = now()",
                [
                    (
                        target,
                        p["ticket"],
                        user_id,
                        login,
                        p["symbol"],
                        p["type"],
                        Decimal(str(p["volume"])),
                        Decimal(str(p["price_open"])),
                        Decimal(str(p["price_current"])),
                        Decimal(str(p["profit"])),
                    )
                    for p in positions
                ],
            )

    async def positions_of(self, user_id: str) -> list[dict[str, Any]]:
        rows = await self._pool.fetch(
            "SELECT * FROM positions WHERE user_id = $1 ORDER BY target, symbol, ticket", user_id
        )
        return [
            {
                "account": r["target"].partition(":")[2] or None,
                "ticket": r["ticket"],
                "login": r["login"],
                "symbol": r["symbol"],
                "side": r["side"],
                "volume": float(r["volume"]),
                "price_open": float(r["price_open"]),
                "price_current": float(r["price_current"]),
                "profit": float(r["profit"]),
                "updated_at": r["updated_at"].isoformat(),
            }
            for r in rows
        ]

    # trading states --------------------------------------------------------------------

    async def trading_state(self, target: str) -> tuple[TradingState, TradingState]:
        """(global, account) states; a scope never set is ACTIVE."""
        rows = await self._pool.fetch(
            "SELECT scope, state FROM trading_states WHERE scope = ANY($1::text[])",
            [GLOBAL_SCOPE, f"account:{target}"],
        )
        found = {r["scope"]: TradingState(r["state"]) for r in rows}
        return (
            found.get(GLOBAL_SCOPE, TradingState.ACTIVE),
            found.get(f"account:{target}", TradingState.ACTIVE),
        )

    async def set_trading_state(
        self, scope: str, state: TradingState, actor: str, reason: str
    ) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            previous = await conn.fetchval(
                "SELECT state FROM trading_states WHERE scope = $1 FOR UPDATE", scope
            )
            await conn.execute(
                "INSERT INTO trading_states (scope, state, reason, updated_by) VALUES ($1, $2,"
                " $3, $4) ON CONFLICT (scope) DO UPDATE SET state = EXCLUDED.state, reason ="
                " EXCLUDED.reason, updated_by = EXCLUDED.updated_by, updated_at = now()",
                scope,
                state.value,
                reason,
                actor,
            )
            await self._audit.append(
                actor,
                "risk.trading_state",
                scope,
                "success",
                {"from": previous or "active", "to": state.value, "reason": reason},
                conn=conn,
            )

    async def trading_states(self) -> list[dict[str, Any]]:
        rows = await self._pool.fetch("SELECT * FROM trading_states ORDER BY scope")
        return [
            {
                "scope": r["scope"],
                "state": r["state"],
                "reason": r["reason"],
                "updated_by": r["updated_by"],
                "updated_at": r["updated_at"].isoformat(),
            }
            for r in rows
        ]
