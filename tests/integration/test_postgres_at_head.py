"""`at_head` against the session's PostgreSQL: a scratch schema stands in for a database at,
behind or without a recorded revision, without touching the session's own schema."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from aitrading.core.infrastructure.config_manager import Settings, load_settings
from aitrading.core.stores.clickhouse import ClickHouseStore
from aitrading.core.stores.postgres import PostgresStore, postgres_dsn
from aitrading.services.database_service.app import create_app
from aitrading.services.database_service.schema.postgres_revision import at_head, head_revisions

from .test_database_service import running, settings_env

pytestmark = pytest.mark.integration


@pytest.fixture
async def scratch(settings: Settings, migrated: PostgresStore) -> AsyncIterator[asyncpg.Pool]:
    """A pool whose search_path is an empty schema of its own."""
    schema = f"scratch_{uuid.uuid4().hex[:8]}"
    await migrated.pool.execute(f"CREATE SCHEMA {schema}")
    pool = await asyncpg.create_pool(
        postgres_dsn(settings), min_size=1, max_size=1, server_settings={"search_path": schema}
    )
    assert pool is not None
    try:
        yield pool
    finally:
        await pool.close()
        await migrated.pool.execute(f"DROP SCHEMA {schema} CASCADE")


async def test_the_migrated_session_database_is_at_head(migrated: PostgresStore) -> None:
    assert await at_head(migrated.pool)


async def test_never_migrated_behind_and_at_head(scratch: asyncpg.Pool) -> None:
    assert not await at_head(scratch)  # no alembic_version table at all
    await scratch.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
    assert not await at_head(scratch)  # the table, empty
    await scratch.execute("INSERT INTO alembic_version VALUES ('0001')")
    assert not await at_head(scratch)  # behind
    await scratch.execute("DELETE FROM alembic_version")
    for head in head_revisions():
        await scratch.execute("INSERT INTO alembic_version VALUES ($1)", head)
    assert await at_head(scratch)


@pytest.mark.parametrize("schema_at_head", [True, False])
async def test_database_service_loads_alembic_only_for_a_database_behind_the_head(
    settings: Settings,
    migrated: PostgresStore,
    clickhouse: ClickHouseStore,
    monkeypatch: pytest.MonkeyPatch,
    schema_at_head: bool,
) -> None:
    del migrated, clickhouse  # the session's database (at head) and its one chdb path
    from aitrading.services.database_service import app as app_module
    from aitrading.services.database_service.schema import postgres as alembic_module

    upgrades: list[Settings] = []

    async def upgrade(given: Settings, revision: str = "head") -> list[str]:
        upgrades.append(given)
        return []

    async def behind(_: asyncpg.Pool) -> bool:
        return False

    monkeypatch.setattr(alembic_module, "migrate", upgrade)
    if not schema_at_head:
        monkeypatch.setattr(app_module, "at_head", behind)
    env = {**settings_env(settings), "AITRADING_SERVICES_MIGRATE_ON_START": "true"}
    app = create_app(load_settings(environ=env).settings, CollectorRegistry())
    async for api in running(app):
        assert (await api.get("/health/ready")).status_code == 200
    assert len(upgrades) == (0 if schema_at_head else 1)
