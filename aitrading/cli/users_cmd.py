"""`aitrading users create|api-key|subscribe`: accounts for people and machine clients."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import typer

from aitrading.cli.common import (
    ConfigOption,
    PasswordStdinOption,
    console,
    err_console,
    load_or_exit,
    password_from_stdin,
)
from aitrading.core.infrastructure.config_manager import Settings

app = typer.Typer(help="Users and API keys (PostgreSQL).", no_args_is_help=True)


@app.command()
def create(
    email: str = typer.Option(..., help="login email"),
    role: str = typer.Option("user", help="user | admin | service"),
    password_stdin: bool = PasswordStdinOption,
    config: Path | None = ConfigOption,
) -> None:
    """Create a user; the password comes from stdin (never from the command line)."""
    if role not in ("user", "admin", "service"):
        err_console.print("role must be user, admin or service")
        raise typer.Exit(2)
    password = password_from_stdin(password_stdin)
    settings = load_or_exit(config).settings
    try:
        user_id = asyncio.run(_create(settings, email, password, role))
    except ValueError as exc:
        err_console.print(str(exc))
        raise typer.Exit(2) from None
    console.print(f"created {user_id} ({email}, {role})")


@app.command("api-key")
def api_key(
    user_id: str = typer.Argument(..., help="the user the key acts for"),
    name: str = typer.Option(..., help="what the key is for, e.g. 'mt5 terminal 1'"),
    scope: list[str] = typer.Option(  # noqa: B008
        [], "--scope", help="what the key may do beyond reading: 'ingest' for an MT5 connector"
    ),
    config: Path | None = ConfigOption,
) -> None:
    """Create an API key; it is printed once and only its hash is stored.

    A connector's key needs `--scope ingest`: only such keys get connector tokens
    (`POST /auth/connector-token`), and only connector tokens may publish market data."""
    from aitrading.core.security.scopes import parse_scopes

    try:
        scopes = tuple(s.value for s in parse_scopes(scope))
    except ValueError as exc:
        err_console.print(str(exc))
        raise typer.Exit(2) from None
    settings = load_or_exit(config).settings
    print(asyncio.run(_api_key(settings, user_id, name, scopes)))


@app.command()
def subscribe(
    user_id: str = typer.Argument(..., help="the user (as `users create` printed it)"),
    plan: str = typer.Option(..., help="free | basic | pro | enterprise, or a stored plan id"),
    days: int = typer.Option(30, min=1, max=36500, help="the paid period from now"),
    config: Path | None = ConfigOption,
) -> None:
    """Give a user an active subscription on a plan (what decides symbols, limits and
    whether they may place orders)."""
    settings = load_or_exit(config).settings
    until = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
    try:
        asyncio.run(_subscribe(settings, user_id, plan, until))
    except ValueError as exc:
        err_console.print(str(exc))
        raise typer.Exit(2) from None
    console.print(f"{user_id}: {plan} until {until:%Y-%m-%d}")


async def _subscribe(settings: Settings, user_id: str, plan: str, until: dt.datetime) -> None:
    from aitrading.core.security.subscription_validator import SubscriptionValidator
    from aitrading.core.stores.postgres import PostgresStore
    from aitrading.core.stores.redis_store import RedisStore

    postgres = await PostgresStore.create(settings)
    redis = RedisStore.create(settings)
    try:
        await SubscriptionValidator(postgres.pool, redis.client).subscribe(user_id, plan, until)
    finally:
        await postgres.close()
        await redis.close()


async def _create(settings: Settings, email: str, password: str, role: str) -> str:
    from aitrading.core.security.users import UserStore
    from aitrading.core.stores.postgres import PostgresStore

    store = await PostgresStore.create(settings)
    try:
        return (await UserStore(store.pool).create(email, password, role)).id
    finally:
        await store.close()


async def _api_key(settings: Settings, user_id: str, name: str, scopes: tuple[str, ...]) -> str:
    from aitrading.core.security.users import UserStore
    from aitrading.core.stores.postgres import PostgresStore

    store = await PostgresStore.create(settings)
    try:
        return await UserStore(store.pool).create_api_key(user_id, name, scopes)
    finally:
        await store.close()
