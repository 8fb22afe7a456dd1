"""Orders and positions, for users (through the api-gateway)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from aitrading.services.common.http import ApiError, error_responses
from aitrading.services.trading_engine.deps import CurrentUser, Engine
from aitrading.services.trading_engine.order_model import (
    IllegalTransitionError,
    OrderRequest,
    OrderStatus,
)

OrderId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="the order's id")]

router = APIRouter(prefix="/api/v1", tags=["orders"])


@router.post(
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


@router.get(
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


@router.get(
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


@router.delete(
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


@router.get(
    "/positions",
    summary="Open positions reported by your connectors",
    responses=error_responses(400, 401, 503),
)
async def positions(user: CurrentUser, engine: Engine) -> dict[str, Any]:
    return {"positions": await engine.store.positions_of(user)}
