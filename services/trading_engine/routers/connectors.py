"""The connectors' execution reports and positions, relayed by data-bridge."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Response
from pydantic import ConfigDict, Field

from aitrading.core.market.ticks import SOURCE_PATTERN, SYMBOL_PATTERN
from aitrading.services.common.http import ApiError, error_responses
from aitrading.services.common.text import StorableText
from aitrading.services.trading_engine.deps import Bridge, Engine
from aitrading.services.trading_engine.engine import ExecutionReport, NotYoursError
from aitrading.services.trading_engine.order_model import (
    IllegalTransitionError,
    ReportStatus,
)

router = APIRouter(prefix="/internal/v1", tags=["connectors"])
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


@router.post(
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


@router.post(
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
