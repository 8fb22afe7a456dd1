"""Call-chain health as the gateway sees it: error rate and latency p99 per chain."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from aitrading.services.api_gateway.deps import CurrentPrincipal, Gateway
from aitrading.services.common.http import error_responses

router = APIRouter(prefix="/api/v1", tags=["tracing"])


@router.get(
    "/chains",
    summary="Each call chain seen by the gateway: error rate and latency p99",
    responses=error_responses(400, 401, 429, 503),
)
async def chain_health(_: CurrentPrincipal, gateway: Gateway) -> dict[str, Any]:
    return {"chains": gateway.chains.report()}
