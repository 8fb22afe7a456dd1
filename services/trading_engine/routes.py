"""The trading-engine's HTTP interface: orders and positions for users (through the gateway),
trading states for admins, and the connector's reports relayed by data-bridge."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import ConfigDict, Field

from aitrading.core.market.ticks import SOURCE_PATTERN, SYMBOL_PATTERN
from aitrading.services.common.http import ApiError, error_responses
from aitrading.services.common.text import StorableText
from aitrading.services.trading_engine.deps import Admin, Bridge, CurrentUser, Engine
from aitrading.services.trading_engine.engine import ExecutionReport, NotYoursError
from aitrading.services.trading_engine.order_model import (
    IllegalTransitionError,
    OrderRequest,
    OrderStatus,
    ReportStatus,
)
from aitrading.services.trading_engine.order_store import GLOBAL_SCOPE
from aitrading.services.trading_engine.risk_rules import RULES, TradingState

OrderId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="the order's id")]

orders = APIRouter(prefix="/api/v1", tags=["orders"])


@orders.post(
    "/orders",
    status_code=201,
    summary="Place an order (pre-trade risk, then to the account's MT5 connector)",
    responses={
        200: {"description": "this client_order_id was placed before: that order, unchanged"},
        **error_responses(400, 401, 422, 503),
    },
)
async def place(body: OrderRequest, user: CurrentUser, engine: Engine, response: Response) -> Any:
    """A denied order is created too, in state `denied`, with `denied_by` naming the rule and
    `reason` saying why; it never leaves the platform."""
    order, created = await engine.submit(user, body)
    if not created:
        response.status_code = 200
    return order.public()


@orders.get(
    "/orders", summary="Your orders, newest first", responses=error_responses(400, 401, 422, 503)
)
async def list_orders(
    user: CurrentUser,
    engine: Engine,
    status: Annotated[OrderStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    found = await engine.store.of_user(user, limit, status)
    return {"orders": [o.public() for o in found]}


@orders.get(
    "/orders/{order_id}",
    summary="One order with its history of transitions",
    responses=error_responses(400, 401, 404, 422, 503),
)
async def get_order(order_id: OrderId, user: CurrentUser, engine: Engine) -> dict[str, Any]:
    try:
        order = await engine.owned(user, order_id)
    except LookupError:
        raise ApiError(404, "not_found", f"no order {order_id}") from None
    return {**order.public(), "events": await engine.store.events(order_id)}


@orders.delete(
    "/orders/{order_id}",
    status_code=202,
    summary="Cancel an order (the connector confirms: pending_cancel, then canceled)",
    responses=error_responses(400, 401, 404, 409, 422, 503),
)
async def cancel(order_id: OrderId, user: CurrentUser, engine: Engine) -> dict[str, Any]:
    try:
        return (await engine.cancel(user, order_id)).public()
    except LookupError:
        raise ApiError(404, "not_found", f"no order {order_id}") from None
    except IllegalTransitionError as exc:
        raise ApiError(409, "order_final", str(exc)) from None


@orders.get(
    "/positions",
    summary="Open positions reported by your connectors",
    responses=error_responses(400, 401, 503),
)
async def positions(user: CurrentUser, engine: Engine) -> dict[str, Any]:
    return {"positions": await engine.store.positions_of(user)}


risk = APIRouter(prefix="/api/v1/risk", tags=["risk"])
Scope = Annotated[
    str,
    Field(
        pattern=rf"^({GLOBAL_SCOPE}|account:{SOURCE_PATTERN})$",
        description='"global", or "account:<connector source>" (e.g. "account:u123:terminal-1")',
    ),
]


class TradingStateChange(StorableText):
    model_config = ConfigDict(extra="forbid", strict=True)

    scope: Scope
    state: TradingState = Field(strict=False)
    reason: str = Field(min_length=1, max_length=500)


@risk.get(
    "/state",
    summary="Trading states (global and per account) and the risk limits in force",
    responses=error_responses(400, 401, 403, 503),
)
async def risk_state(_: Admin, engine: Engine) -> dict[str, Any]:
    return {
        "states": await engine.store.trading_states(),
        "rules": [name for name, _ in RULES],
        "limits": engine.limits.model_dump(mode="json"),
    }


@risk.put(
    "/state",
    summary="Set a trading state: active, reducing (only exposure-reducing orders) or halted"
    " (kill switch); effective on the next order in every replica",
    responses=error_responses(400, 401, 403, 422, 503),
)
async def set_risk_state(body: TradingStateChange, admin: Admin, engine: Engine) -> dict[str, Any]:
    await engine.store.set_trading_state(body.scope, body.state, admin, body.reason)
    return {"scope": body.scope, "state": body.state.value}


internal = APIRouter(prefix="/internal/v1", tags=["connectors"])
Source = Annotated[str, Field(pattern=f"^{SOURCE_PATTERN}$")]


class ReportBody(StorableText):
    """A connector's `execution_report`, relayed by data-bridge with the connector's source."""

    model_config = ConfigDict(extra="forbid", strict=True)

    source: Source
    order_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    status: ReportStatus = Field(strict=False)
    retcode: int | None = Field(default=None, ge=0, le=2**31 - 1)
    ticket: int | None = Field(default=None, ge=0, le=2**63 - 1)
    filled_volume: float = Field(default=0.0, ge=0, le=1e6)
    fill_price: float | None = Field(default=None, ge=1e-10, le=1e12)
    message: str = Field(default="", max_length=1000)


@internal.post(
    "/execution-reports",
    summary="A connector's execution report (data-bridge only)",
    responses=error_responses(400, 401, 403, 404, 409, 422, 503),
)
async def execution_report(body: ReportBody, _: Bridge, engine: Engine) -> dict[str, Any]:
    report = ExecutionReport(
        body.order_id,
        body.status,
        body.retcode,
        body.ticket,
        body.filled_volume,
        body.fill_price,
        body.message,
    )
    try:
        order = await engine.apply_report(body.source, report)
    except LookupError:
        raise ApiError(404, "unknown_order", f"no order {body.order_id}") from None
    except NotYoursError as exc:
        raise ApiError(403, "not_your_order", str(exc)) from None
    except IllegalTransitionError as exc:
        raise ApiError(409, "order_state", str(exc)) from None
    except ValueError as exc:
        raise ApiError(422, "invalid_report", str(exc)) from None
    return {"order_id": order.id, "status": order.status.value}


class PositionBody(StorableText):
    model_config = ConfigDict(extra="forbid", strict=True)

    ticket: int = Field(ge=0, le=2**63 - 1)
    symbol: str = Field(pattern=f"^{SYMBOL_PATTERN}$")
    type: Literal["buy", "sell"]
    volume: float = Field(ge=0, le=1e6)
    price_open: float = Field(ge=0, le=1e12)
    price_current: float = Field(ge=0, le=1e12)
    profit: float = Field(ge=-1e15, le=1e15)


class PositionsBody(StorableText):
    model_config = ConfigDict(extra="forbid", strict=True)

    source: Source
    login: int = Field(ge=0, le=2**63 - 1)
    positions: list[PositionBody] = Field(max_length=10_000)


@internal.post(
    "/positions",
    status_code=204,
    summary="A connector's full set of open positions (data-bridge only)",
    responses=error_responses(400, 401, 422, 503),
)
async def store_positions(body: PositionsBody, _: Bridge, engine: Engine) -> Response:
    user = body.source.partition(":")[0]
    await engine.store.replace_positions(
        body.source, user, body.login, [p.model_dump() for p in body.positions]
    )
    return Response(status_code=204)
