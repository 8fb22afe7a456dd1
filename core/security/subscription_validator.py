"""Subscriptions and what they entitle: plans, statuses, cached entitlements, live revocation.

Plans (free, basic, pro, enterprise) carry entitlements: symbols, concurrent streams, rate
limits and features. A user's subscription lives in PostgreSQL with its status; what it
entitles right now follows from status and time:

- active, trialing: the plan;
- past_due: the plan until the grace period ends, then the free plan;
- canceled, unpaid: the free plan.

Entitlements are cached in Redis and in process memory. Every change bumps the subscription's
entitlement version and is published on one Redis channel; every service's
`EntitlementWatcher` drops its cached copy and calls back, so live sessions can be closed or
downgraded at once rather than at the next cache expiry.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from aitrading.core.infrastructure.channel_listener import ChannelListener

if TYPE_CHECKING:
    import asyncpg
    import redis.asyncio as aioredis

CHANNEL = "aitrading:subscriptions:changed"
CACHE_PREFIX = "aitrading:ent"
FREE_PLAN_ID = "free"
_SYMBOL_PATTERN = re.compile(r"^[A-Za-z0-9._*?-]{1,32}$")


class Tier(StrEnum):
    FREE = "free"
    BASIC = "basic"
    PRO = "pro"
    ENTERPRISE = "enterprise"


class Status(StrEnum):
    ACTIVE = "active"
    TRIALING = "trialing"
    PAST_DUE = "past_due"
    CANCELED = "canceled"
    UNPAID = "unpaid"


class InvalidRecordError(ValueError):
    """A plan or subscription was refused at write time; the message lists every problem."""


class RateLimitSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    requests: int = Field(ge=1, le=10_000_000)
    period_s: float = Field(gt=0, le=86400)


class Entitlements(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    symbols: tuple[str, ...] = Field(min_length=1, description="patterns: EURUSD, XAU*, *")
    max_streams: int = Field(ge=0, le=10_000)
    rate_limits: dict[str, RateLimitSpec] = Field(default_factory=dict)
    features: frozenset[str] = frozenset()

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [s for s in value if not _SYMBOL_PATTERN.match(s)]
        if bad:
            raise ValueError(f"invalid symbol pattern(s): {bad}")
        return value

    def allows_symbol(self, symbol: str) -> bool:
        return any(fnmatch.fnmatchcase(symbol, pattern) for pattern in self.symbols)


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    tier: Tier
    entitlements: Entitlements


class Subscription(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: str = Field(min_length=1, max_length=128)
    plan_id: str
    status: Status
    current_period_end: dt.datetime
    grace_period_s: int = Field(default=3 * 86400, ge=0, le=60 * 86400)
    entitlement_version: int = 0

    @field_validator("current_period_end")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("current_period_end must carry a time zone")
        return value


@dataclass(frozen=True)
class Effective:
    """What a user may do now, and why."""

    user_id: str
    tier: Tier
    plan_id: str
    status: Status | None
    entitlement_version: int
    entitlements: Entitlements

    def to_json(self) -> str:
        return json.dumps(
            {
                "user_id": self.user_id,
                "tier": self.tier.value,
                "plan_id": self.plan_id,
                "status": self.status.value if self.status else None,
                "entitlement_version": self.entitlement_version,
                "entitlements": self.entitlements.model_dump(mode="json"),
            }
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> Effective:
        data = json.loads(raw)
        return cls(
            user_id=data["user_id"],
            tier=Tier(data["tier"]),
            plan_id=data["plan_id"],
            status=Status(data["status"]) if data["status"] else None,
            entitlement_version=int(data["entitlement_version"]),
            entitlements=Entitlements.model_validate(data["entitlements"]),
        )


def _validated(model: type[BaseModel], data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidRecordError(f"{model.__name__} refused: {problems}") from None


def effective(
    user_id: str, subscription: Subscription | None, plan: Plan | None, free: Plan, now: dt.datetime
) -> Effective:
    """Pure: what a subscription entitles at `now` (see the module docstring)."""
    if subscription is None or plan is None:
        return Effective(user_id, free.tier, free.id, None, 0, free.entitlements)
    status = subscription.status
    grants = status in (Status.ACTIVE, Status.TRIALING) or (
        status is Status.PAST_DUE
        and now
        < subscription.current_period_end + dt.timedelta(seconds=subscription.grace_period_s)
    )
    source = plan if grants else free
    return Effective(
        user_id,
        source.tier,
        source.id,
        status,
        subscription.entitlement_version,
        source.entitlements,
    )


class SubscriptionValidator:
    """Reads and changes subscriptions; answers entitlements from cache when it can."""

    def __init__(self, pool: asyncpg.Pool, redis: aioredis.Redis, cache_ttl_s: int = 300) -> None:
        self._pool = pool
        self._redis = redis
        self._ttl = cache_ttl_s
        self._local: dict[str, Effective] = {}

    async def upsert_plan(self, plan: Plan | dict[str, Any]) -> Plan:
        valid: Plan = plan if isinstance(plan, Plan) else _validated(Plan, plan)
        await self._pool.execute(
            "INSERT INTO subscription_plans (id, tier, entitlements) VALUES ($1, $2, $3::jsonb)"
            " ON CONFLICT (id) DO UPDATE SET tier = EXCLUDED.tier,"
            " entitlements = EXCLUDED.entitlements, updated_at = now()",
            valid.id,
            valid.tier.value,
            valid.entitlements.model_dump_json(),
        )
        subscribers = await self._pool.fetch(
            "UPDATE subscriptions SET entitlement_version = entitlement_version + 1,"
            " updated_at = now() WHERE plan_id = $1 RETURNING user_id, entitlement_version",
            valid.id,
        )
        for row in subscribers:
            await self._changed(row["user_id"], int(row["entitlement_version"]), "plan-changed")
        return valid

    async def set_subscription(self, record: Subscription | dict[str, Any]) -> Subscription:
        """Create or change a subscription; validated, versioned, and announced."""
        sub: Subscription = (
            record if isinstance(record, Subscription) else _validated(Subscription, record)
        )
        row = await self._pool.fetchrow(
            "INSERT INTO subscriptions AS s (user_id, plan_id, status, current_period_end,"
            " grace_period_s) VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT (user_id) DO UPDATE SET plan_id = EXCLUDED.plan_id,"
            " status = EXCLUDED.status, current_period_end = EXCLUDED.current_period_end,"
            " grace_period_s = EXCLUDED.grace_period_s,"
            " entitlement_version = s.entitlement_version + 1, updated_at = now()"
            " RETURNING entitlement_version",
            sub.user_id,
            sub.plan_id,
            sub.status.value,
            sub.current_period_end,
            sub.grace_period_s,
        )
        assert row is not None
        version = int(row["entitlement_version"])
        await self._changed(sub.user_id, version, sub.status.value)
        return sub.model_copy(update={"entitlement_version": version})

    async def subscribe(self, user_id: str, plan_id: str, until: dt.datetime) -> Subscription:
        """An active subscription on `plan_id` until `until`; a built-in plan (DEFAULT_PLANS)
        that the database does not hold yet is stored first. What `aitrading users subscribe`
        and the demo login do. An unknown user is refused (the table has no foreign key: a
        mistyped id would otherwise be stored silently and grant nothing)."""
        if await self._pool.fetchval("SELECT 1 FROM users WHERE id = $1", user_id) is None:
            raise ValueError(f"no user {user_id!r} (users create prints the id)")
        known = await self._pool.fetchval("SELECT 1 FROM subscription_plans WHERE id = $1", plan_id)
        if known is None:
            if plan_id not in DEFAULT_PLANS:
                raise ValueError(
                    f"no plan {plan_id!r}; built in: {', '.join(sorted(DEFAULT_PLANS))}"
                )
            await self.upsert_plan(DEFAULT_PLANS[plan_id])
        return await self.set_subscription(
            {
                "user_id": user_id,
                "plan_id": plan_id,
                "status": "active",
                "current_period_end": until,
            }
        )

    async def entitlements(self, user_id: str) -> Effective:
        """Process cache, then Redis, then PostgreSQL."""
        local = self._local.get(user_id)
        if local is not None:
            return local
        cached = await self._redis.get(f"{CACHE_PREFIX}:{user_id}")
        if cached is not None:
            result = Effective.from_json(cached)
        else:
            result = await self._load(user_id)
            await self._redis.set(f"{CACHE_PREFIX}:{user_id}", result.to_json(), ex=self._ttl)
        self._local[user_id] = result
        return result

    def drop(self, user_id: str) -> None:
        """Forget the process-local copy (the watcher calls this on every change)."""
        self._local.pop(user_id, None)

    def drop_all(self) -> None:
        """Forget every process-local copy (changes may have been missed)."""
        self._local.clear()

    async def _load(self, user_id: str) -> Effective:
        row = await self._pool.fetchrow(
            "SELECT s.user_id, s.plan_id, s.status, s.current_period_end, s.grace_period_s,"
            " s.entitlement_version, p.tier, p.entitlements::text AS entitlements"
            " FROM subscriptions s JOIN subscription_plans p ON p.id = s.plan_id"
            " WHERE s.user_id = $1",
            user_id,
        )
        free = await self._plan(FREE_PLAN_ID)
        if row is None:
            return effective(user_id, None, None, free, dt.datetime.now(dt.UTC))
        sub = Subscription(
            user_id=row["user_id"],
            plan_id=row["plan_id"],
            status=Status(row["status"]),
            current_period_end=row["current_period_end"],
            grace_period_s=row["grace_period_s"],
            entitlement_version=row["entitlement_version"],
        )
        plan = Plan(
            id=row["plan_id"],
            tier=Tier(row["tier"]),
            entitlements=Entitlements.model_validate_json(row["entitlements"]),
        )
        return effective(user_id, sub, plan, free, dt.datetime.now(dt.UTC))

    async def _plan(self, plan_id: str) -> Plan:
        row = await self._pool.fetchrow(
            "SELECT id, tier, entitlements::text AS entitlements FROM subscription_plans"
            " WHERE id = $1",
            plan_id,
        )
        if row is None:
            return DEFAULT_PLANS[plan_id]
        return Plan(
            id=row["id"],
            tier=Tier(row["tier"]),
            entitlements=Entitlements.model_validate_json(row["entitlements"]),
        )

    async def _changed(self, user_id: str, version: int, reason: str) -> None:
        self.drop(user_id)
        await self._redis.delete(f"{CACHE_PREFIX}:{user_id}")
        message = json.dumps({"user_id": user_id, "entitlement_version": version, "reason": reason})
        await self._redis.publish(CHANNEL, message)


ChangeCallback = Callable[[str, int, str], Awaitable[None]]


class EntitlementWatcher(ChannelListener):
    """Listens for subscription changes; drops cached entitlements and calls back at once.

    A hub component: after the store went away and came back, every process-local copy is
    dropped, since a change published in the gap was missed."""

    def __init__(
        self,
        redis: aioredis.Redis,
        validator: SubscriptionValidator | None = None,
        on_change: ChangeCallback | None = None,
    ) -> None:
        super().__init__("entitlement-watcher", redis, CHANNEL)
        self._validator = validator
        self._on_change = on_change

    async def on_message(self, data: Any) -> None:
        try:
            change = json.loads(data)
            user_id, version = str(change["user_id"]), int(change["entitlement_version"])
        except (ValueError, KeyError, TypeError):
            return  # not ours to crash on; the next message may be fine
        if self._validator is not None:
            self._validator.drop(user_id)
        if self._on_change is not None:
            await self._on_change(user_id, version, str(change.get("reason", "")))

    def on_resubscribed(self) -> None:
        if self._validator is not None:
            self._validator.drop_all()


def _plan(
    plan_id: str,
    tier: Tier,
    symbols: tuple[str, ...],
    streams: int,
    rpm: int,
    features: frozenset[str],
) -> Plan:
    return Plan(
        id=plan_id,
        tier=tier,
        entitlements=Entitlements(
            symbols=symbols,
            max_streams=streams,
            rate_limits={"market-data": RateLimitSpec(requests=rpm, period_s=60)},
            features=features,
        ),
    )


DEFAULT_PLANS: dict[str, Plan] = {
    "free": _plan("free", Tier.FREE, ("EURUSD", "GBPUSD"), 1, 60, frozenset({"ticks"})),
    "basic": _plan(
        "basic", Tier.BASIC, ("EUR*", "GBP*", "USD*"), 2, 600, frozenset({"ticks", "ohlcv"})
    ),
    "pro": _plan("pro", Tier.PRO, ("*",), 10, 6000, frozenset({"ticks", "ohlcv", "orders"})),
    "enterprise": _plan(
        "enterprise",
        Tier.ENTERPRISE,
        ("*",),
        100,
        60000,
        frozenset({"ticks", "ohlcv", "orders", "account"}),
    ),
}
