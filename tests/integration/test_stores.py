"""The store factories against real servers: embedded PostgreSQL, redis-server and chdb."""

from __future__ import annotations

import os

import pytest

from aitrading.core.infrastructure.central_hub import HealthStatus
from aitrading.core.infrastructure.config_manager import Settings, load_settings
from aitrading.core.stores.clickhouse import ClickHouseStore
from aitrading.core.stores.embedded import EmbeddedPostgres, EmbeddedRedis, PortInUseError
from aitrading.core.stores.postgres import PostgresStore
from aitrading.core.stores.redis_store import RedisStore

from .conftest import embedded_env

pytestmark = pytest.mark.integration


async def test_postgres_pool_round_trip_and_gauges(postgres: PostgresStore) -> None:
    health = await postgres.health()
    assert health.status is HealthStatus.HEALTHY, health.reason
    assert "round trip" in health.reason
    version = await postgres.pool.fetchval("SHOW server_version")
    assert int(str(version).split(".")[0]) >= 15
    in_use, idle = postgres.pool_usage()
    assert in_use == 0
    assert idle >= 1


async def test_embedded_postgres_requires_its_password(settings: Settings) -> None:
    import asyncpg

    dsn = EmbeddedPostgres(settings).dsn()
    wrong = dsn.replace(dsn.split(":")[2].split("@")[0], "wrong-password")
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(wrong)


async def test_redis_round_trip_and_auth(redis_store: RedisStore, settings: Settings) -> None:
    health = await redis_store.health()
    assert health.status is HealthStatus.HEALTHY, health.reason
    await redis_store.client.set("aitrading:test", "1", ex=10)
    assert await redis_store.client.get("aitrading:test") == b"1"
    in_use, idle = redis_store.pool_usage()
    assert in_use == 0
    assert idle >= 1
    import redis.asyncio as aioredis
    from redis.exceptions import AuthenticationError, ResponseError

    anonymous = aioredis.from_url(f"redis://127.0.0.1:{settings.redis.port}/0")
    with pytest.raises((AuthenticationError, ResponseError)):
        await anonymous.ping()
    await anonymous.aclose()


async def test_clickhouse_chdb_round_trip(clickhouse: ClickHouseStore) -> None:
    health = await clickhouse.health()
    assert health.status is HealthStatus.HEALTHY, health.reason
    await clickhouse.run(
        clickhouse.client.command,
        "CREATE TABLE IF NOT EXISTS probe (n UInt32) ENGINE = MergeTree ORDER BY n",
    )
    await clickhouse.run(clickhouse.client.insert, "probe", [[1], [2], [3]], column_names=["n"])
    assert await clickhouse.query_rows("SELECT sum(n) FROM probe") == [(6,)]


async def test_a_store_that_goes_down_is_reported_by_name_and_reason(
    tmp_path: os.PathLike[str],
) -> None:
    settings = load_settings(environ=embedded_env(tmp_path)).settings  # type: ignore[arg-type]
    server = EmbeddedRedis(settings)
    server.start()
    store = RedisStore.create(settings)
    try:
        assert (await store.health()).status is HealthStatus.HEALTHY
        server.stop()
        health = await store.health()
        assert health.status is HealthStatus.UNHEALTHY
        assert health.reason.startswith("redis:")
        assert "Connection" in health.reason or "connect" in health.reason
        assert "password" not in health.reason.lower() or "***" in health.reason
    finally:
        await store.close()
        server.stop()


def test_embedded_redis_serves_commands_as_soon_as_start_returns(
    tmp_path: os.PathLike[str],
) -> None:
    """redis-server listens before it has loaded its append-only file and answers LOADING
    until then; `start` waits for PING, not for the port, so the first command succeeds."""
    import redis

    from aitrading.core.stores.redis_store import sync_client

    settings = load_settings(environ=embedded_env(tmp_path)).settings  # type: ignore[arg-type]
    server = EmbeddedRedis(settings)
    server.start()
    try:
        client = sync_client(settings)
        with client.pipeline(transaction=False) as pipe:
            for n in range(200_000):  # enough data that loading it takes a while
                pipe.set(f"loaded:{n}", "x" * 50)
                if n % 10_000 == 0:
                    pipe.execute()
            pipe.execute()
        server.stop()  # SIGTERM: redis-server flushes its append-only file first
        server.start()
        fresh = sync_client(settings)
        try:
            assert fresh.get("loaded:199999") == b"x" * 50
        except redis.BusyLoadingError as exc:
            raise AssertionError("start returned while the data was still loading") from exc
        finally:
            fresh.close()
            client.close()
    finally:
        server.stop()


async def test_pooled_connections_serve_again_right_after_a_restart(
    tmp_path: os.PathLike[str],
) -> None:
    """Every pooled connection is stale after a restart; each command on one is retried once
    on a fresh connection, so none fails (each used to: a 503 at the gateway apiece)."""
    import asyncio

    settings = load_settings(environ=embedded_env(tmp_path)).settings  # type: ignore[arg-type]
    server = EmbeddedRedis(settings)
    server.start()
    store = RedisStore.create(settings)
    try:
        await asyncio.gather(*(store.client.execute_command("PING") for _ in range(8)))
        assert store.pool_usage()[1] >= 2, "the pool should hold several idle connections"
        # stop and start block this loop: no connection has seen its socket close
        server.stop()
        server.start()
        done = await asyncio.gather(*(store.client.set(f"after:{n}", n) for n in range(16)))
        assert done == [True] * 16
        assert await store.client.get("after:15") == b"15"
    finally:
        await store.close()
        server.stop()


def test_port_in_use_names_the_port_and_the_setting(tmp_path: os.PathLike[str]) -> None:
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = embedded_env(tmp_path)  # type: ignore[arg-type]
        env["AITRADING_POSTGRES_PORT"] = str(port)
        env["AITRADING_REDIS_PORT"] = str(port)
        settings = load_settings(environ=env).settings
        for server, variable in (
            (EmbeddedPostgres(settings), "AITRADING_POSTGRES_PORT"),
            (EmbeddedRedis(settings), "AITRADING_REDIS_PORT"),
        ):
            with pytest.raises(PortInUseError) as caught:
                server.start()
            assert f"port {port}" in str(caught.value)
            assert variable in str(caught.value)
