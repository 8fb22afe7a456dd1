"""A bearer token's revocation state and its user's rate limit in one Redis call.

A proxied request asked Redis twice after the door's per-IP limit: a pipeline for the
token's revocation state, then the per-user limit's script. redis-py spends about as much CPU
per call as the rest of the hop does per request (the profile of bench/gateway_overhead.py),
so both are one script here: it reads the three revocation keys and, only if they leave the
token valid, decides the limit with the rate limiter's own `gcra` function. A revoked token
therefore never uses up its user's allowance, as before.

Semantics are those of `JWTManager.verify` followed by `RateLimiter.hit`: the same rejection
reasons and counters, the same limit decision, metrics and fallback. Without Redis the token
cannot be checked for revocation, so the request is refused (503), never let through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

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

# KEYS: jti denial, user token version, family revocation, limit key.
# ARGV: the token's `tv`, then the limit's interval ms, tolerance ms and cost.
# Returns {denied, user's version, family revoked, limit reply or false when not decided}.
_ADMIT = (
    GCRA_LUA_FUNCTION
    + """
local denied = redis.call('EXISTS', KEYS[1])
local version = tonumber(redis.call('GET', KEYS[2]) or '0')
local family_revoked = redis.call('EXISTS', KEYS[3])
if denied == 1 or version > tonumber(ARGV[1]) or family_revoked == 1 then
  return {denied, version, family_revoked, false}
end
return {0, version, 0, gcra(KEYS[4], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))}
"""
)


class RevocationUnavailableError(Exception):
    """Redis did not answer: the token's revocation state is unknown."""


@dataclass(frozen=True)
class Admitted:
    claims: dict[str, Any]
    decision: Decision


class Admission:
    def __init__(self, client: aioredis.Redis, jwt: JWTManager, limiter: RateLimiter) -> None:
        self._script: Any = client.register_script(_ADMIT)
        self._jwt = jwt
        self._limiter = limiter

    async def admit(
        self, claims: dict[str, Any], policy: Policy, scope: Scope, tier: str | None
    ) -> Admitted:
        """Decoded `claims` (`JWTManager.claims`) checked for revocation, then charged to
        `policy` for their subject. `TokenRejectedError` when revoked (the limit is then not
        charged); `RevocationUnavailableError` without Redis."""
        jti, sub, family = revocation_keys(claims)
        pending = PendingHit(policy, scope, sub, policy.limit_for(tier), 1)
        try:
            denied, version, family_revoked, limit_reply = await self._script(
                keys=[*state_keys(jti, sub, family), pending.key],
                args=[int(claims.get("tv", 0)), *pending.args],
            )
        except (RedisError, OSError) as exc:
            raise RevocationUnavailableError(type(exc).__name__) from None
        self._jwt.check_revocation(claims, (bool(denied), int(version), bool(family_revoked)))
        if limit_reply is None:  # Lua false: the script saw a revocation check_revocation did not
            raise RevocationUnavailableError("revocation state changed during the check")
        return Admitted(claims, self._limiter.settle(pending, limit_reply))
