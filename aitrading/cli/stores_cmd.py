"""`aitrading stores up|status|down`: the embedded development stores, from any shell."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from aitrading.cli.common import STATUS_STYLE as _STYLE
from aitrading.cli.common import ConfigOption, console, err_console, load_or_exit
from aitrading.core.infrastructure.central_hub import Health, HealthStatus
from aitrading.core.infrastructure.config_manager import Settings
from aitrading.core.infrastructure.import_manager import ImportManager, MissingDependencyError
from aitrading.core.stores.base import StoreNotConfiguredError
from aitrading.core.stores.embedded import (
    EmbeddedClickHouse,
    EmbeddedPostgres,
    EmbeddedRedis,
    EmbeddedServerError,
)

app = typer.Typer(
    help="Start, inspect and stop the embedded development stores.", no_args_is_help=True
)


def _servers(settings: Settings) -> list[EmbeddedPostgres | EmbeddedRedis | EmbeddedClickHouse]:
    imports = ImportManager()
    servers: list[EmbeddedPostgres | EmbeddedRedis | EmbeddedClickHouse] = []
    if settings.postgres.dsn is None:
        servers.append(EmbeddedPostgres(settings, imports))
    if settings.redis.url is None:
        servers.append(EmbeddedRedis(settings, imports))
    if settings.clickhouse.dsn is None:
        servers.append(EmbeddedClickHouse(settings))
    return servers


@app.command()
def up(config: Path | None = ConfigOption) -> None:
    """Start the embedded PostgreSQL and redis-server (detached) and prepare chdb's directory."""
    settings = load_or_exit(config).settings
    for server in _servers(settings):
        try:
            started = server.start()
        except (EmbeddedServerError, MissingDependencyError) as exc:
            err_console.print(f"[red]{server.name}[/]: {exc}")
            raise typer.Exit(1) from None
        if isinstance(server, EmbeddedClickHouse):
            state = "ready"
        else:
            state = "started" if started else "already running"
        console.print(f"[green]{server.name}[/] {state}: {server.status().detail}")


@app.command()
def down(config: Path | None = ConfigOption) -> None:
    """Stop the embedded servers started by `stores up` (data is kept)."""
    settings = load_or_exit(config).settings
    for server in _servers(settings):
        stopped = server.stop()
        console.print(f"{server.name}: {'stopped' if stopped else 'was not running'}")


@app.command()
def status(config: Path | None = ConfigOption) -> None:
    """Each store's process and a real round trip through its client."""
    settings = load_or_exit(config).settings
    rows = asyncio.run(_probe_all(settings))
    from rich.table import Table  # rich is loaded by the commands that print tables

    table = Table(title=f"stores (data: {settings.data_dir.resolve()})")
    for column in ("store", "status", "detail"):
        table.add_column(column)
    for name, health in rows:
        table.add_row(name, f"[{_STYLE[health.status]}]{health.status.value}[/]", health.reason)
    console.print(table)
    if any(h.status is HealthStatus.UNHEALTHY for name, h in rows if name in _CRITICAL):
        raise typer.Exit(1)


_CRITICAL = ("postgres", "redis", "clickhouse")


async def _probe_all(settings: Settings) -> list[tuple[str, Health]]:
    from aitrading.core.stores.arango_store import ArangoStore
    from aitrading.core.stores.clickhouse import ClickHouseStore
    from aitrading.core.stores.postgres import PostgresStore
    from aitrading.core.stores.redis_store import RedisStore
    from aitrading.core.stores.weaviate_store import WeaviateStore

    results: list[tuple[str, Health]] = []

    async def probe(name: str, create: Callable[[], Any]) -> None:
        try:
            store = create()
            if inspect.isawaitable(store):
                store = await store
        except StoreNotConfiguredError as exc:
            results.append((name, Health.degraded(f"not configured: set {exc.setting}")))
            return
        except Exception as exc:
            results.append((name, Health.unhealthy(f"cannot connect: {type(exc).__name__}: {exc}")))
            return
        try:
            results.append((name, await store.health()))
        finally:
            await store.close()

    await probe("postgres", lambda: PostgresStore.create(settings))
    await probe("redis", lambda: RedisStore.create(settings))
    if settings.clickhouse.dsn is None:
        chdb = EmbeddedClickHouse(settings)
        holder = chdb.holder_pid()
        if holder is not None:
            results.append(
                ("clickhouse", Health.healthy(f"chdb at {chdb.path} is open in pid {holder}"))
            )
        elif not chdb.path.exists():
            results.append(
                (
                    "clickhouse",
                    Health.unhealthy(f"no chdb data at {chdb.path}; run `aitrading stores up`"),
                )
            )
        else:
            await probe("clickhouse", lambda: ClickHouseStore.create(settings))
    else:
        await probe("clickhouse", lambda: ClickHouseStore.create(settings))
    await probe("weaviate", lambda: WeaviateStore.create(settings))
    await probe("arango", lambda: ArangoStore.create(settings))
    return results
