"""Tokens: log in, refresh, connector tokens, log out, and the public keys (JWKS).

The token endpoints are public but limited per IP (`LoginAttempt`, failing closed); every
outcome that matters to an investigation is in the audit log.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import ConfigDict, Field

from aitrading.core.security.jwt_manager import TokenPair, TokenRejectedError
from aitrading.core.security.scopes import TokenScope
from aitrading.services.api_gateway.deps import CurrentPrincipal, LoginAttempt, Stores
from aitrading.services.common.http import ApiError, error_responses
from aitrading.services.common.text import StorableText

router = APIRouter(tags=["auth"])
_REFUSALS = error_responses(400, 401, 429, 503)


class _Body(StorableText):
    # storable text: a NUL in an email used to reach PostgreSQL and answer 500
    model_config = ConfigDict(extra="forbid", strict=True)


class TokenRequest(_Body):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class RefreshRequest(_Body):
    refresh_token: str = Field(min_length=10, max_length=8192)


def _pair(pair: TokenPair, with_refresh: bool = True) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "access_token": pair.access_token,
        "token_type": "Bearer",
        "expires_in": pair.expires_in,
    }
    if with_refresh:
        answer["refresh_token"] = pair.refresh_token
    return answer


@router.get("/.well-known/jwks.json", summary="Public keys (JWKS)")
async def jwks(stores: Stores) -> dict[str, Any]:
    result: dict[str, Any] = stores.jwt.jwks()
    return result


@router.post("/auth/token", summary="Log in: access and refresh tokens", responses=_REFUSALS)
async def token(body: TokenRequest, ip: LoginAttempt, stores: Stores) -> dict[str, Any]:
    user = await stores.users.authenticate(body.email, body.password)
    if user is None:
        await stores.audit.append(body.email.lower(), "login", "auth/token", "failure", {"ip": ip})
        raise ApiError(401, "unauthorized", "wrong email or password")
    entitlement = await stores.subscriptions.entitlements(user.id)
    pair = await stores.jwt.issue(user.id, entitlement.tier.value, entitlement.entitlement_version)
    await stores.audit.append(user.id, "login", "auth/token", "success", {"ip": ip})
    return _pair(pair)


@router.post("/auth/refresh", summary="Rotate a refresh token", responses=_REFUSALS)
async def refresh(body: RefreshRequest, ip: LoginAttempt, stores: Stores) -> dict[str, Any]:
    try:
        claims = stores.jwt.decode(body.refresh_token, expected_type="refresh")
        entitlement = await stores.subscriptions.entitlements(str(claims["sub"]))
        pair = await stores.jwt.refresh(
            body.refresh_token, entitlement.tier.value, entitlement.entitlement_version
        )
    except TokenRejectedError as exc:
        await stores.audit.append(
            "unknown",
            "token.refresh",
            "auth/refresh",
            "failure",
            {"reason": exc.reason.value, "ip": ip},
        )
        raise ApiError(401, "unauthorized", "invalid refresh token") from None
    return _pair(pair)


@router.post(
    "/auth/connector-token",
    summary="A token for an MT5 connector, from an API key with the ingest scope",
    responses=error_responses(400, 401, 403, 429, 503),
)
async def connector_token(request: Request, ip: LoginAttempt, stores: Stores) -> dict[str, Any]:
    """Only connector identities may publish market data: the `X-API-Key` must carry the
    `ingest` scope (`aitrading users api-key --scope ingest`). No refresh token: the
    connector asks again with its key."""
    key = request.headers.get("x-api-key", "")
    user = await stores.users.verify_api_key(key) if key else None
    if user is None:
        raise ApiError(401, "unauthorized", "a valid X-API-Key is required")
    if TokenScope.INGEST.value not in user.scopes:
        await stores.audit.append(user.id, "connector.token", "auth", "failure", {"ip": ip})
        raise ApiError(403, "forbidden", "this API key does not have the ingest scope")
    entitlement = await stores.subscriptions.entitlements(user.id)
    pair = await stores.jwt.issue(
        user.id,
        entitlement.tier.value,
        entitlement.entitlement_version,
        scopes=(TokenScope.INGEST,),
    )
    await stores.audit.append(user.id, "connector.token", "auth", "success", {"ip": ip})
    return _pair(pair, with_refresh=False)


@router.post(
    "/auth/logout",
    summary="End this session (or every session)",
    status_code=204,
    responses=_REFUSALS,
)
async def logout(
    request: Request,
    caller: CurrentPrincipal,
    stores: Stores,
    everywhere: Annotated[bool, Query(description="end every session of the user")] = False,
) -> Response:
    """Revokes the presented token and its session: the session's refresh token stops
    working too. `?everywhere=true` ends every session of the user."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        await stores.jwt.revoke(header[7:].strip())
    if everywhere:
        await stores.jwt.revoke_all(caller.subject)
    action = "token.revoke_all" if everywhere else "token.revoke"
    await stores.audit.append(caller.subject, action, "auth/logout", "success")
    return Response(status_code=204)
