"""Subscriptions in the real PostgreSQL, cached in the real redis-server, revoked live."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
import uuid

import asyncpg
import pytest

from aitrading.core.infrastructure.config_manager import Settings
from aitrading.core.security.subscription_validator import (
    CACHE_PREFIX,
    DEFAULT_PLANS,
    EntitlementWatcher,
    InvalidRecordError,
    Status,
    SubscriptionValidator,
    Tier,
)
from aitrading.core.stores.postgres import PostgresStore, postgres_dsn
from aitrading.core.stores.redis_store import RedisStore, redis_url

pytestmark = pytest.mark.integration

LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)


@pytest.fixture
async def validator(migrated: PostgresStore, redis_store: RedisStore) -> SubscriptionValidator:
    v = SubscriptionValidator(migrated.pool, redis_store.client)
    for plan in DEFAULT_PLANS.values():
        await v.upsert_plan(plan)
    return v


async def test_entitlements_follow_the_subscription_and_are_cached(
    validator: SubscriptionValidator, redis_store: RedisStore
) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    assert (await validator.entitlements(user)).tier is Tier.FREE
    await validator.set_subscription(
        {"user_id": user, "plan_id": "pro", "status": "active", "current_period_end": LATER}
    )
    granted = await validator.entitlements(user)
    assert granted.tier is Tier.PRO
    assert granted.entitlements.allows_symbol("XAUUSD")
    assert await redis_store.client.get(f"{CACHE_PREFIX}:{user}") is not None

    changed = await validator.set_subscription(
        {"user_id": user, "plan_id": "pro", "status": "canceled", "current_period_end": LATER}
    )
    assert changed.entitlement_version == granted.entitlement_version + 1
    downgraded = await validator.entitlements(user)
    assert downgraded.tier is Tier.FREE
    assert downgraded.status is Status.CANCELED


async def test_garbage_is_refused_at_write_time(
    validator: SubscriptionValidator, postgres: PostgresStore
) -> None:
    with pytest.raises(InvalidRecordError, match="status"):
        await validator.set_subscription(
            {"user_id": "u", "plan_id": "pro", "status": "forever", "current_period_end": LATER}
        )
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await validator.set_subscription(
            {
                "user_id": "u",
                "plan_id": "no-such-plan",
                "status": "active",
                "current_period_end": LATER,
            }
        )
    with pytest.raises(asyncpg.CheckViolationError):  # the database refuses it too
        await postgres.pool.execute(
            "INSERT INTO subscription_plans (id, tier, entitlements) VALUES ('x', 'gold', '{}')"
        )


WATCHER = """
import asyncio, json, sys, time
import redis.asyncio as aioredis
from aitrading.core.security.subscription_validator import EntitlementWatcher

async def main():
    client = aioredis.from_url(sys.argv[1])
    seen = asyncio.Event()
    async def on_change(user_id, version, reason):
        if user_id == sys.argv[2]:
            print(json.dumps({"seen_at": time.time(), "reason": reason}), flush=True)
            seen.set()
    watcher = EntitlementWatcher(client, on_change=on_change)
    await watcher.start()
    print("subscribed", flush=True)
    await asyncio.wait_for(seen.wait(), 30)
    await watcher.stop()
    await client.aclose()

asyncio.run(main())
"""


async def test_revocation_is_seen_by_another_process_in_under_a_second(
    validator: SubscriptionValidator, settings: Settings
) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    await validator.set_subscription(
        {"user_id": user, "plan_id": "pro", "status": "active", "current_period_end": LATER}
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WATCHER,
        redis_url(settings),
        user,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"subscribed"
    await validator.set_subscription(
        {"user_id": user, "plan_id": "pro", "status": "unpaid", "current_period_end": LATER}
    )
    report = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
    await proc.wait()
    assert report["reason"] == "unpaid"  # it reached the other process (its speed: bench/)


async def test_watcher_drops_the_local_copy(
    validator: SubscriptionValidator, postgres: PostgresStore, redis_store: RedisStore
) -> None:
    """A second validator (another service) sees a change made by the first at once."""
    other = SubscriptionValidator(postgres.pool, redis_store.client)
    changes: asyncio.Queue[str] = asyncio.Queue()

    async def on_change(user_id: str, version: int, reason: str) -> None:
        await changes.put(user_id)

    watcher = EntitlementWatcher(redis_store.listener, other, on_change)
    await watcher.start()
    try:
        user = f"user-{uuid.uuid4().hex[:8]}"
        await validator.set_subscription(
            {"user_id": user, "plan_id": "basic", "status": "active", "current_period_end": LATER}
        )
        while await asyncio.wait_for(changes.get(), 5) != user:
            pass
        assert (await other.entitlements(user)).tier is Tier.BASIC
        await validator.set_subscription(
            {
                "user_id": user,
                "plan_id": "enterprise",
                "status": "active",
                "current_period_end": LATER,
            }
        )
        while await asyncio.wait_for(changes.get(), 5) != user:
            pass
        assert (await other.entitlements(user)).tier is Tier.ENTERPRISE
    finally:
        await watcher.stop()


async def test_users_subscribe_gives_a_plan_from_the_command_line(
    settings: Settings, postgres: PostgresStore
) -> None:
    """How a platform operator lets a user trade: `users create`, then `users subscribe`.
    A plan the database does not hold yet is one of the built-in ones or an error."""
    from aitrading.services.database_service.schema.postgres import migrate

    await migrate(settings)
    env = {
        "AITRADING_POSTGRES_DSN": postgres_dsn(settings),
        "AITRADING_REDIS_URL": redis_url(settings),
        "AITRADING_DATA_DIR": str(settings.data_dir),
    }

    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        import os

        return subprocess.run(
            [sys.executable, "-m", "aitrading", "users", *args],
            input=stdin,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    email = f"sub-{uuid.uuid4().hex[:6]}@example.com"
    made = cli("create", "--email", email, "--password-stdin", stdin="a long enough password")
    assert made.returncode == 0, made.stderr
    user_id = made.stdout.split()[1]
    given = cli("subscribe", user_id, "--plan", "pro", "--days", "7")
    assert given.returncode == 0, given.stderr
    assert given.stdout.startswith(f"{user_id}: pro until ")
    unknown = cli("subscribe", user_id, "--plan", "platinum")
    assert unknown.returncode == 2
    assert "no plan 'platinum'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    nobody = cli("subscribe", "u_nobody", "--plan", "pro")
    assert nobody.returncode == 2, nobody.stderr
    assert "no user 'u_nobody'" in nobody.stderr
    assert "Traceback" not in nobody.stderr

    row = await postgres.pool.fetchrow(
        "SELECT plan_id, status FROM subscriptions WHERE user_id = $1", user_id
    )
    assert row is not None
    assert (row["plan_id"], row["status"]) == ("pro", "active")


async def test_the_watcher_subscribes_again_and_forgets_what_it_may_have_missed(
    validator: SubscriptionValidator,
    postgres: PostgresStore,
    redis_store: RedisStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The store drops the watcher's subscription (a restart, a failover): health says so,
    the watcher subscribes again, and a change published in the gap — which it never saw —
    still applies, because every process-local copy was dropped on resubscribing. Before,
    the watcher's task ended for good and the stale copy was served until a restart."""
    from aitrading.core.infrastructure import channel_listener
    from aitrading.core.infrastructure.central_hub import HealthStatus

    monkeypatch.setattr(channel_listener, "RETRY_S", 3.0)  # a gap wide enough to publish in
    other = SubscriptionValidator(postgres.pool, redis_store.client)
    seen: list[str] = []

    async def on_change(user_id: str, version: int, reason: str) -> None:
        seen.append(user_id)

    watcher = EntitlementWatcher(redis_store.listener, other, on_change)
    user = f"user-{uuid.uuid4().hex[:8]}"
    await validator.set_subscription(
        {"user_id": user, "plan_id": "basic", "status": "active", "current_period_end": LATER}
    )
    await watcher.start()
    try:
        assert (await other.entitlements(user)).tier is Tier.BASIC  # now cached in `other`
        assert (await watcher.health()).status is HealthStatus.HEALTHY
        await redis_store.client.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        await _until_status(watcher, HealthStatus.DEGRADED)
        assert "subscription lost" in (await watcher.health()).reason
        await validator.set_subscription(
            {
                "user_id": user,
                "plan_id": "enterprise",
                "status": "active",
                "current_period_end": LATER,
            }
        )
        await _until_status(watcher, HealthStatus.HEALTHY)
        assert user not in seen, "the change was published while nobody listened"
        assert (await other.entitlements(user)).tier is Tier.ENTERPRISE
    finally:
        await watcher.stop()


async def _until_status(watcher: EntitlementWatcher, status: object) -> None:
    for _ in range(3000):
        if (await watcher.health()).status is status:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the watcher never became {status}")
