"""Typed request dependencies: who is calling (a service, on behalf of which user) and the
engine that serves them.

Zero trust: the trading-engine takes user requests only from the api-gateway and connector
reports only from data-bridge, each proven by a service token for this service's audience —
always, in development too. The gateway names the authenticated user in `X-Aitrading-User`;
that header means nothing without the gateway's token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from aitrading.core.security.service_identity import ServiceTokenVerifier
from aitrading.core.security.users import UserStore
from aitrading.services.common.dependencies import available, calling_service
from aitrading.services.common.http import ApiError
from aitrading.services.trading_engine.engine import OrderEngine

_log = logging.getLogger(__name__)
USER_HEADER = "x-aitrading-user"


@dataclass
class EngineState:
    """What the lifespan builds; routes reach it through `engine_of` and friends."""

    engine: OrderEngine | None = None
    users: UserStore | None = None
    gateway: ServiceTokenVerifier | None = None
    bridge: ServiceTokenVerifier | None = None


def state_of(request: Request) -> EngineState:
    state: EngineState = request.app.state.engine
    return state


async def engine_of(request: Request) -> OrderEngine:
    starting = "the trading-engine is starting: postgres not ready"
    return available(state_of(request).engine, starting)


def _verify(verifier: ServiceTokenVerifier | None, request: Request) -> str:
    return calling_service(
        available(verifier, "the trading-engine is starting"),
        request,
        "this service is reached through the api-gateway",
    )


async def user_of(request: Request) -> str:
    """The user the api-gateway authenticated (its service token proves the header)."""
    _verify(state_of(request).gateway, request)
    user = request.headers.get(USER_HEADER, "")
    if not user or user == "anonymous":
        raise ApiError(401, "unauthorized", "authentication required")
    return user


async def admin_of(request: Request) -> str:
    """An administrator: the gateway checked the role; checked again here (defence in depth)."""
    user = await user_of(request)
    users = state_of(request).users
    record = await users.get(user) if users is not None else None
    if record is None or record.role != "admin":
        raise ApiError(403, "forbidden", "administrators only")
    return user


async def bridge_of(request: Request) -> str:
    """data-bridge, relaying a connector's frame."""
    return _verify(state_of(request).bridge, request)


Engine = Annotated[OrderEngine, Depends(engine_of)]
CurrentUser = Annotated[str, Depends(user_of)]
Admin = Annotated[str, Depends(admin_of)]
Bridge = Annotated[str, Depends(bridge_of)]
