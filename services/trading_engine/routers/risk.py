"""Trading states (kill switch, reduce-only) and the risk limits in force, for admins."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import ConfigDict, Field

from aitrading.core.market.ticks import SOURCE_PATTERN
from aitrading.services.common.http import error_responses
from aitrading.services.common.text import StorableText
from aitrading.services.trading_engine.deps import Admin, Engine
from aitrading.services.trading_engine.order_store import GLOBAL_SCOPE
from aitrading.services.trading_engine.risk_rules import RULES, TradingState

router = APIRouter(prefix="/api/v1/risk", tags=["risk"])
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


@router.get(
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


@router.put(
    "/state",
    summary="Set a trading state: active, reducing (only exposure-reducing orders) or halted"
    " (kill switch); effective on the next order in every replica",
    responses=error_responses(400, 401, 403, 422, 503),
)
async def set_risk_state(body: TradingStateChange, admin: Admin, engine: Engine) -> dict[str, Any]:
    await engine.store.set_trading_state(body.scope, body.state, admin, body.reason)
    return {"scope": body.scope, "state": body.state.value}
