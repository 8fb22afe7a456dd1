"""PostgreSQL schema, managed by alembic (versions/). Run through `migrate()` below."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine

from aitrading.core.infrastructure.config_manager import Settings, env_name
from aitrading.core.stores.postgres import connection_tls, postgres_dsn

HERE = Path(__file__).parent


def execute_script(sql: str) -> None:
    """Run a multi-statement SQL script inside a migration (asyncpg's simple-query protocol).

    SQLAlchemy prepares every statement, which PostgreSQL refuses for scripts; the migration's
    own connection and transaction are used, so the script stays part of the migration.
    """
    from alembic import op
    from sqlalchemy.util import await_

    driver = op.get_bind().connection.driver_connection
    if driver is None:
        raise RuntimeError("the migration connection has no driver connection")
    await_(driver.execute(sql))


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    return config


def _engine_args(settings: Settings) -> tuple[str, dict[str, Any]]:
    owner = settings.postgres.migration_dsn  # the schema owner, when it is a separate role
    dsn = owner.get_secret_value() if owner is not None else postgres_dsn(settings)
    setting = env_name("postgres.migration_dsn" if owner is not None else "postgres.dsn")
    parts = urlsplit(dsn)
    url = urlunsplit(("postgresql+asyncpg", parts.netloc, parts.path, "", ""))
    connect_args: dict[str, Any] = {}
    tls = connection_tls(dsn, settings, setting)
    if tls is not None:
        connect_args["ssl"] = tls
    return url, connect_args


async def migrate(settings: Settings, revision: str = "head") -> list[str]:
    """Upgrade to `revision`; returns the revisions applied now."""
    url, connect_args = _engine_args(settings)
    engine = create_async_engine(url, connect_args=connect_args)
    config = alembic_config()
    script = ScriptDirectory.from_config(config)
    try:
        async with engine.begin() as conn:

            def current(sync_conn: Any) -> set[str]:
                return set(MigrationContext.configure(sync_conn).get_current_heads())

            before = await conn.run_sync(current)

            def upgrade(sync_conn: Any) -> None:
                config.attributes["connection"] = sync_conn
                command.upgrade(config, revision)

            await conn.run_sync(upgrade)
            after = await conn.run_sync(current)
    finally:
        await engine.dispose()
    if before == after:
        return []
    applied = []
    for rev in script.iterate_revisions(tuple(after) or "base", tuple(before) or "base"):
        applied.append(f"postgres {rev.revision} {rev.doc}")
    return list(reversed(applied))
