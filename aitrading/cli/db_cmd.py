"""`aitrading db migrate`: apply every database's schema (what a deploy Job runs)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from aitrading.cli.common import ConfigOption, console, err_console, load_or_exit
from aitrading.core.infrastructure.config_manager import Settings

app = typer.Typer(help="Database schemas.", no_args_is_help=True)


@app.command()
def migrate(config: Path | None = ConfigOption) -> None:
    """Apply pending migrations: PostgreSQL (alembic), ClickHouse, Weaviate, ArangoDB."""
    settings = load_or_exit(config).settings
    try:
        applied = asyncio.run(migrate_all(settings))
    except Exception as exc:
        err_console.print(f"[red]migration failed:[/] {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None
    for line in applied:
        console.print(f"applied {line}")
    console.print(f"{len(applied)} migration(s) applied; schemas are current")


async def migrate_all(settings: Settings) -> list[str]:
    from aitrading.core.stores.clickhouse import ClickHouseStore
    from aitrading.services.database_service.schema import (
        arango_schema,
        clickhouse,
        weaviate_schema,
    )
    from aitrading.services.database_service.schema.postgres import migrate as migrate_postgres

    applied = await migrate_postgres(settings)
    store = await ClickHouseStore.create(settings)
    try:
        applied += await clickhouse.migrate(store, settings.clickhouse.tick_ttl_days)
    finally:
        await store.close()
    if settings.weaviate.url is not None:
        from aitrading.core.stores.weaviate_store import WeaviateStore

        weaviate = await WeaviateStore.create(settings)
        try:
            applied += await weaviate_schema.migrate(weaviate.client)
        finally:
            await weaviate.close()
    if settings.arango.url is not None:
        from aitrading.core.stores.arango_store import ArangoStore

        arango = ArangoStore.create(settings)
        try:
            applied += await asyncio.to_thread(arango_schema.migrate, arango.db)
        finally:
            await arango.close()
    return applied
