"""A bearer token's revocation state and its user's rate limit in one Redis call, with the
door's per-IP limit in the same call when the door left it to admission.

A proxied request asked Redis three times: the door's per-IP limit, a pipeline for the
token's revocation state, then the per-user limit's script. redis-py spends about as much CPU
per call as the rest of the hop does per request (the profile of bench/gateway_overhead.py),
so all three are one script here, deciding in the order the calls were made:

1. the per-IP limit, when the door deferred it (`DoorLimits`, `door_limit_deferrable`); refused
   there, nothing else is charged or read;
2. the three revocation keys; a revoked token is refused and never uses its user's allowance;
3. the per-user limit, with the rate limiter's own `gcra` function.

The door defers only for a request the proxy will admit this way and whose token is in the
verified cache (`JWTManager.known`), so no signature check runs before the per-IP limit; for
any other request it decides at once, as before. Semantics are those of the separate calls:
the same rejection reasons and counters, the same limit decisions, metrics and fallback.
Without Redis the token cannot be checked for revocation, so the request is refused (503).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from starlette.datastructures import Headers
from starlette.types import Scope as AsgiScope

from aitrading.core.security.jwt_manager import JWTManager, revocation_keys
from aitrading.core.security.rate_limiter import (
    GCRA_LUA_FUNCTION,
    Decision,
    PendingHit,
    Policy,
    RateLimiter,
    Scope,
)
from aitrading.core.security.token_revocation import state_keys
from aitrading.services.api_gateway.routing import Access, Route, routed

# KEYS: jti denial, user token version, family revocation, user limit key[, per-IP limit key].
# ARGV: the token's `tv`; the user limit's interval ms, tolerance ms, cost[; the per-IP
# limit's]. Returns {per-IP reply or false, denied, user's version, family revoked, user limit
# reply or false}: false where the script stopped before deciding.
_ADMIT = (
    GCRA_LUA_FUNCTION
    + """
local door = false
if #KEYS == 5 then
  door = gcra(KEYS[5], tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]))
  if door[1] == 0 then
    return {door, 0, 0, 0, false}
  end
end
local denied = redis.call('EXISTS', KEYS[1])
local version = tonumber(redis.call('GET', KEYS[2]) or '0')
local family_revoked = redis.call('EXISTS', KEYS[3])
if denied == 1 or version > tonumber(ARGV[1]) or family_revoked == 1 then
  return {door, denied, version, family_revoked, false}
end
local user = gcra(KEYS[4], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
return {door, 0, version, 0, user}
"""
)


class RevocationUnavailableError(Exception):
    """Redis did not answer: the token's revocation state is unknown."""


@dataclass(frozen=True)
class Admitted:
    """The decision that settles the request: the per-user limit's, or the per-IP limit's
    (`by_door`) when that refused and nothing else was read or charged."""

    decision: Decision
    by_door: bool = False


class Admission:
    def __init__(self, client: aioredis.Redis, jwt: JWTManager, limiter: RateLimiter) -> None:
        self._script: Any = client.register_script(_ADMIT)
        self._jwt = jwt
        self._limiter = limiter

    async def admit(
        self,
        claims: dict[str, Any],
        policy: Policy,
        scope: Scope,
        tier: str | None,
        door: PendingHit | None = None,
    ) -> Admitted:
        """Decoded `claims` (`JWTManager.claims`) checked for revocation, then charged to
        `policy` for their subject; first the per-IP `door` limit when given. Raises
        `TokenRejectedError` when revoked (the user limit is then not charged) and
        `RevocationUnavailableError` without Redis."""
        jti, sub, family = revocation_keys(claims)
        pending = PendingHit(policy, scope, sub, tier)
        keys = [*state_keys(jti, sub, family), pending.key]
        args = [int(claims.get("tv", 0)), *pending.args]
        if door is not None:
            keys.append(door.key)
            args.extend(door.args)
        try:
            door_reply, denied, version, family_revoked, user_reply = await self._script(
                keys=keys, args=args
            )
        except (RedisError, OSError) as exc:
            raise RevocationUnavailableError(type(exc).__name__) from None
        door_decision = self._limiter.settle(door, door_reply) if door is not None else None
        if door_decision is not None and not door_decision.allowed:
            return Admitted(door_decision, by_door=True)
        self._jwt.check_revocation(claims, (bool(denied), int(version), bool(family_revoked)))
        if user_reply is None:  # Lua false: the script's revocation rule disagrees with ours
            raise RevocationUnavailableError("the admission script found the token revoked")
        return Admitted(self._limiter.settle(pending, user_reply))


def door_limit_deferrable(
    scope: AsgiScope, routes: tuple[Route, ...], jwt: JWTManager | None
) -> bool:
    """Whether the door may leave this request's per-IP limit to admission: the proxy will
    admit it (a route of the table, not public, this method) and its bearer token is already
    verified, so nothing costly runs before the per-IP limit is decided."""
    if jwt is None or scope["type"] != "http":
        return False
    route = routed(scope, routes)
    if route is None or route.access is Access.PUBLIC or scope["method"] not in route.methods:
        return False
    token = bearer_in(Headers(scope=scope).get("authorization", ""))
    return token is not None and jwt.known(token)


def bearer_in(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer …` header value, None for any other."""
    return authorization[7:].strip() if authorization[:7].lower() == "bearer " else None
