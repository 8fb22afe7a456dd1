"""Rate limiting with GCRA, atomic in the Redis-protocol store, with an explicit failure mode.

GCRA (the generic cell rate algorithm) keeps one number per key — the theoretical arrival
time — so a decision is one read-modify-write. That happens inside one Lua script that touches
only the key it declares (DragonflyDB runs such scripts without a global lock) and reads the
server's clock, so every process sharing a limit agrees on time.

When the store is unreachable each policy decides: `closed` refuses (authentication — an
attacker must not gain by knocking out Redis), `open` falls back to an in-process GCRA
(market data — better a per-process limit than an outage). Using the fallback is visible:
`health()` turns degraded and the `aitrading_ratelimit_fallback_active` gauge is 1.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter, Gauge
from redis.exceptions import RedisError

from aitrading.core.infrastructure.central_hub import Health

KEY_PREFIX = "aitrading:rl"

# The generic cell rate algorithm as a Lua function, so that a script of another module can
# decide a limit in the same call as its own reads (the gateway's admission script does).
# Returns {allowed (0/1), retry_after_ms, remaining}.
GCRA_LUA_FUNCTION = """
local function gcra(key, interval, tolerance, cost)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local new_tat = tat + interval * cost
  local allow_at = new_tat - tolerance
  if now < allow_at then
    return {0, math.ceil(allow_at - now), 0}
  end
  redis.call('SET', key, string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1)
  return {1, 0, math.floor((tolerance - (new_tat - now)) / interval)}
end
"""
# KEYS[1]: the limited key. ARGV: emission interval ms, burst tolerance ms, cost.
_GCRA = (
    GCRA_LUA_FUNCTION
    + "return gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))\n"
)


class FailureMode(StrEnum):
    CLOSED = "closed"
    OPEN = "open"


class Scope(StrEnum):
    USER = "user"
    API_KEY = "apikey"
    IP = "ip"


@dataclass(frozen=True)
class Limit:
    """`requests` per `period_s`, with bursts of up to `burst` (default: `requests`)."""

    requests: int
    period_s: float
    burst: int | None = None

    def __post_init__(self) -> None:
        if self.requests < 1 or self.period_s <= 0:
            raise ValueError(f"a limit needs requests >= 1 and period > 0, got {self}")
        if self.burst is not None and self.burst < 1:
            raise ValueError(f"burst must be >= 1, got {self.burst}")

    @property
    def interval_ms(self) -> float:
        return self.period_s * 1000 / self.requests

    @property
    def tolerance_ms(self) -> float:
        return self.interval_ms * (self.burst or self.requests)


@dataclass(frozen=True)
class Policy:
    """A named limit with one limit per subscription tier and a failure mode."""

    name: str
    limits: dict[str, Limit]
    failure_mode: FailureMode
    default_tier: str = "free"

    def limit_for(self, tier: str | None) -> Limit:
        return self.limits.get(tier or self.default_tier) or self.limits[self.default_tier]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after_s: float
    remaining: int
    backend: str  # "redis", "fallback" or "unavailable"

    @property
    def retry_after_header(self) -> str:
        """The HTTP Retry-After value: whole seconds, rounded up, at least 1 when refused."""
        return str(max(1, math.ceil(self.retry_after_s))) if not self.allowed else "0"


@dataclass(frozen=True)
class PendingHit:
    """One rate-limit decision asked for and not answered yet."""

    policy: Policy
    scope: Scope
    identity: str
    tier: str | None = None
    cost: int = 1

    @property
    def limit(self) -> Limit:
        return self.policy.limit_for(self.tier)

    @property
    def key(self) -> str:
        return f"{KEY_PREFIX}:{self.policy.name}:{self.scope.value}:{self.identity}"

    @property
    def args(self) -> list[float | int]:
        return [self.limit.interval_ms, self.limit.tolerance_ms, self.cost]


class _LocalGCRA:
    """The same algorithm in process memory: the fail-open fallback."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()
        self._max_keys = max_keys

    def decide(self, key: str, limit: Limit, cost: int) -> tuple[bool, float, int]:
        now = time.monotonic() * 1000
        with self._lock:
            if len(self._tat) >= self._max_keys:
                self._tat = {k: v for k, v in self._tat.items() if v > now}
            tat = max(self._tat.get(key, now), now)
            new_tat = tat + limit.interval_ms * cost
            allow_at = new_tat - limit.tolerance_ms
            if now < allow_at:
                return False, math.ceil(allow_at - now), 0
            self._tat[key] = new_tat
            return True, 0, math.floor((limit.tolerance_ms - (new_tat - now)) / limit.interval_ms)


class RateLimiter:
    """Decides allow / retry-after for (policy, scope, identity), shared through Redis."""

    def __init__(self, client: aioredis.Redis, registry: CollectorRegistry | None = None) -> None:
        self._redis = client
        self._script: Any = client.register_script(_GCRA)
        self._local = _LocalGCRA()
        self._fallback_since: dict[str, float] = {}
        self._last_error = ""
        registry = registry if registry is not None else CollectorRegistry()
        self._decisions = Counter(
            "aitrading_ratelimit_decisions",
            "Rate-limit decisions by policy, outcome and backend",
            ["policy", "outcome", "backend"],
            registry=registry,
        )
        self._fallback_gauge = Gauge(
            "aitrading_ratelimit_fallback_active",
            "1 while a policy decides without Redis (in-process fallback or fail-closed)",
            ["policy"],
            registry=registry,
        )

    async def hit(
        self, policy: Policy, scope: Scope, identity: str, tier: str | None = None, cost: int = 1
    ) -> Decision:
        pending = PendingHit(policy, scope, identity, tier, cost)
        try:
            result: Sequence[Any] | BaseException = await self._script(
                keys=[pending.key], args=pending.args
            )
        except (RedisError, OSError) as exc:
            result = exc
        return self.settle(pending, result)

    def settle(self, pending: PendingHit, result: Sequence[Any] | BaseException) -> Decision:
        """The decision from a `gcra` reply, or the policy's failure mode when Redis failed
        (`result` is then the exception). A script of another module that called `gcra`
        settles its `PendingHit` here, so metrics and fallback are the same."""
        policy = pending.policy
        if isinstance(result, BaseException):
            decision = self._without_redis(policy, pending.key, pending.limit, pending.cost, result)
        else:
            allowed, retry_ms, remaining = result
            self._recovered(policy)
            decision = Decision(bool(allowed), int(retry_ms) / 1000, int(remaining), "redis")
        outcome = "allowed" if decision.allowed else "refused"
        self._decisions.labels(policy.name, outcome, decision.backend).inc()
        return decision

    def health(self) -> Health:
        """Degraded while any policy decides without Redis, naming the policies."""
        if not self._fallback_since:
            return Health.healthy("deciding through redis")
        names = ", ".join(sorted(self._fallback_since))
        return Health.degraded(f"redis unavailable ({self._last_error}); without it: {names}")

    def _without_redis(
        self, policy: Policy, key: str, limit: Limit, cost: int, exc: BaseException
    ) -> Decision:
        self._last_error = type(exc).__name__
        self._fallback_since.setdefault(policy.name, time.time())
        self._fallback_gauge.labels(policy.name).set(1)
        if policy.failure_mode is FailureMode.CLOSED:
            return Decision(False, limit.interval_ms / 1000, 0, "unavailable")
        allowed, retry_ms, remaining = self._local.decide(key, limit, cost)
        return Decision(allowed, retry_ms / 1000, remaining, "fallback")

    def _recovered(self, policy: Policy) -> None:
        if self._fallback_since.pop(policy.name, None) is not None:
            self._fallback_gauge.labels(policy.name).set(0)


TIERS = ("free", "basic", "pro", "enterprise")

# Defaults; subscription plans carry their own limits (subscription_validator).
AUTHENTICATION = Policy(
    "auth",
    {tier: Limit(10, 60, burst=5) for tier in TIERS},
    FailureMode.CLOSED,
)
MARKET_DATA = Policy(
    "market-data",
    {
        "free": Limit(60, 60),
        "basic": Limit(600, 60),
        "pro": Limit(6000, 60),
        "enterprise": Limit(60000, 60),
    },
    FailureMode.OPEN,
)
