"""`aitrading audit verify|keygen`: check the audit chain against its signed checkpoints."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from aitrading.cli.common import ConfigOption, console, err_console, load_or_exit
from aitrading.core.infrastructure.config_manager import Settings, env_name
from aitrading.core.security.audit_checkpoint_file import CheckpointFile
from aitrading.core.security.audit_logger import (
    AuditLog,
    VerifyReport,
    load_signing_key,
    write_signing_key,
)

KeyPathArgument = typer.Argument(..., help="Where to write the new Ed25519 key (0600).")

app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


@app.command()
def verify(
    config: Path | None = ConfigOption,
    schema: str = typer.Option("public", help="PostgreSQL schema of the audit tables."),
) -> None:
    """Walk the hash chain and every signed checkpoint; exit 1 naming the first bad sequence."""
    settings = load_or_exit(config).settings
    key_file = settings.security.audit_signing_key_file
    if key_file is None:
        err_console.print(
            f"set {env_name('security.audit_signing_key_file')} to the checkpoint key"
        )
        raise typer.Exit(2)
    external = settings.security.audit_checkpoint_file
    if external is not None and not external.exists():
        err_console.print(
            f"the external checkpoint copy {external} does not exist "
            f"({env_name('security.audit_checkpoint_file')}); refusing to verify without it"
        )
        raise typer.Exit(1)
    report = asyncio.run(_verify(settings, key_file, schema))
    if report.ok:
        console.print(
            f"[green]audit log intact[/]: {report.records} records, "
            f"{report.checkpoints} checkpoints"
        )
        return
    err_console.print(f"[red]audit log tampered[/] at sequence {report.first_bad_seq}:")
    err_console.print(f"  {report.problem}")
    raise typer.Exit(1)


@app.command()
def keygen(path: Path = KeyPathArgument) -> None:
    """Create a checkpoint signing key; keep it outside the database host's reach."""
    try:
        write_signing_key(path)
    except FileExistsError:
        err_console.print(f"{path} exists; refusing to overwrite a signing key")
        raise typer.Exit(1) from None
    console.print(f"wrote {path}")


async def _verify(settings: Settings, key_file: Path, schema: str) -> VerifyReport:
    from aitrading.core.stores.postgres import PostgresStore

    public_key = load_signing_key(key_file).public_key()
    store = await PostgresStore.create(settings)
    try:
        external = settings.security.audit_checkpoint_file
        copies = CheckpointFile(external).read() if external is not None else None
        return await AuditLog(store.pool, schema).verify(public_key, copies)
    finally:
        await store.close()
