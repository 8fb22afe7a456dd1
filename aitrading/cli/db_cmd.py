"""`aitrading db migrate|runtime-login|adopt-password`: schemas, logins and passwords."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import unquote, urlsplit

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


@app.command("runtime-login")
def runtime_login(
    name: str = typer.Argument(..., help="login role for a service, e.g. aitrading_gateway"),
    password_stdin: bool = PasswordStdinOption,
    config: Path | None = ConfigOption,
) -> None:
    """Create (or re-password) a login in aitrading_runtime: what services connect as.

    Run with the schema owner's DSN (`AITRADING_POSTGRES_MIGRATION_DSN`, else
    `AITRADING_POSTGRES_DSN`) after `db migrate`. Such a login may only INSERT and SELECT the
    audit log and cannot disable its triggers."""
    import re

    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        err_console.print("the login name must match [a-z_][a-z0-9_]{0,62}")
        raise typer.Exit(2)
    password = password_from_stdin(password_stdin)
    if len(password) < 16:
        err_console.print("use a password of at least 16 characters")
        raise typer.Exit(2)
    settings = load_or_exit(config).settings
    try:
        asyncio.run(_runtime_login(settings, name, password))
    except Exception as exc:
        err_console.print(f"[red]could not create the login:[/] {type(exc).__name__}")
        raise typer.Exit(1) from None
    console.print(f"{name} can log in as a member of aitrading_runtime")


@app.command("adopt-password")
def adopt_password(config: Path | None = ConfigOption) -> None:
    """Make the schema owner's password the one in AITRADING_POSTGRES_MIGRATION_DSN.

    After a password rotation the server still knows the previous one: if the owner DSN is
    refused for its password, log in once with AITRADING_POSTGRES_PREVIOUS_MIGRATION_DSN and
    set the new one (ALTER ROLE CURRENT_USER). Nothing to do when the DSN already works.
    database-service's init container runs it before `db migrate`."""
    settings = load_or_exit(config).settings
    try:
        outcome = asyncio.run(_adopt_password(settings))
    except AdoptPasswordError as exc:
        err_console.print(str(exc))
        raise typer.Exit(1) from None
    console.print(outcome)


class AdoptPasswordError(Exception):
    """The owner's new password cannot be adopted; the message says why (no secret in it)."""


async def _adopt_password(settings: Settings) -> str:
    import asyncpg

    from aitrading.core.infrastructure.config_manager import env_name
    from aitrading.core.stores.postgres import connection_tls

    conf = settings.postgres
    if conf.migration_dsn is None:
        raise AdoptPasswordError(f"set {env_name('postgres.migration_dsn')} to the owner's DSN")
    dsn = conf.migration_dsn.get_secret_value()
    setting = env_name("postgres.migration_dsn")
    try:
        conn = await asyncpg.connect(dsn, ssl=connection_tls(dsn, settings, setting))
    except asyncpg.InvalidPasswordError:
        pass
    else:
        await conn.close()
        return "the owner's password is current"
    if conf.previous_migration_dsn is None:
        raise AdoptPasswordError(
            f"PostgreSQL refuses the password in {setting} and no "
            f"{env_name('postgres.previous_migration_dsn')} is set to change it with"
        )
    previous = conf.previous_migration_dsn.get_secret_value()
    new_password = unquote(urlsplit(dsn).password or "")
    if len(new_password) < 16:
        raise AdoptPasswordError(f"the password in {setting} is shorter than 16 characters")
    setting = env_name("postgres.previous_migration_dsn")
    try:
        conn = await asyncpg.connect(previous, ssl=connection_tls(previous, settings, setting))
    except asyncpg.InvalidPasswordError:
        raise AdoptPasswordError(
            f"PostgreSQL refuses both {env_name('postgres.migration_dsn')} and {setting}"
        ) from None
    try:
        literal = await conn.fetchval("SELECT quote_literal($1)", new_password)
        await conn.execute(f"ALTER ROLE CURRENT_USER PASSWORD {literal}")
    finally:
        await conn.close()
    return "the owner now logs in with the new password"


async def _runtime_login(settings: Settings, name: str, password: str) -> None:
    import asyncpg

    from aitrading.core.infrastructure.config_manager import env_name
    from aitrading.core.stores.postgres import connection_tls, postgres_dsn

    owner = settings.postgres.migration_dsn
    dsn = owner.get_secret_value() if owner is not None else postgres_dsn(settings)
    setting = env_name("postgres.migration_dsn" if owner is not None else "postgres.dsn")
    conn = await asyncpg.connect(dsn, ssl=connection_tls(dsn, settings, setting))
    try:
        quoted = '"' + name + '"'  # validated above: no quoting tricks possible
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name)
        verb = "ALTER" if exists else "CREATE"
        # The password travels as a literal the server hashes (SCRAM); never logged here.
        literal = await conn.fetchval("SELECT quote_literal($1)", password)
        await conn.execute(
            f"{verb} ROLE {quoted} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {literal}"
        )
        await conn.execute(f"GRANT aitrading_runtime TO {quoted}")
    finally:
        await conn.close()


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
