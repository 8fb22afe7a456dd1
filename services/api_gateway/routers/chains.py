"""Call-chain health: error rate and latency p99 per chain, summed over every gateway
replica (persisted through database-service; 503 naming it while it is unavailable)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from aitrading.core.market.ticks import MAX_TIME_MSC, MIN_TIME_MSC
from aitrading.services.api_gateway.deps import CurrentPrincipal, Gateway
from aitrading.services.api_gateway.tracing import ChainsUnavailableError
from aitrading.services.common.http import ApiError, error_responses

router = APIRouter(prefix="/api/v1", tags=["tracing"])


@router.get(
    "/chains",
    summary="Each call chain seen by the gateway: error rate and latency p99",
    responses=error_responses(400, 401, 429, 503),
)
async def chain_health(
    _: CurrentPrincipal,
    gateway: Gateway,
    window_s: Annotated[int, Query(ge=1, le=86_400, description="the last N seconds")] = 300,
    since_ms: Annotated[
        int | None,
        Query(ge=MIN_TIME_MSC, le=MAX_TIME_MSC, description="instead: since this time (ms)"),
    ] = None,
) -> dict[str, Any]:
    try:
        return {"chains": await gateway.chains.report(window_s, since_ms)}
    except ChainsUnavailableError as exc:
        raise ApiError(503, "upstream_unavailable", f"chain outcomes: {exc}") from None
