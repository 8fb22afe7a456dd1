"""The `aitrading` entry point."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import typer

from aitrading.cli import (
    audit_cmd,
    connector_cmd,
    db_cmd,
    logs_cmd,
    mt5_sim_cmd,
    operator_cmd,
    serve_cmd,
    stores_cmd,
    ticks_cmd,
    tls_cmd,
    users_cmd,
)
from aitrading.cli.common import ConfigOption, console, err_console, load_or_exit
from aitrading.cli.failures import EXIT_FAILED, explain
from aitrading.core.infrastructure.config_manager import DEBUG_ENV, effective_items

app = typer.Typer(
    help="aitrading: embedded stores, configuration, services and the Kubernetes operator.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold secrets
)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(stores_cmd.app, name="stores")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(db_cmd.app, name="db")
app.add_typer(logs_cmd.app, name="logs")
app.command("serve")(serve_cmd.serve)
app.command("mt5-sim")(mt5_sim_cmd.mt5_sim)
app.command("operator")(operator_cmd.operator)
app.add_typer(users_cmd.app, name="users")
app.add_typer(ticks_cmd.app, name="ticks")
app.add_typer(connector_cmd.app, name="connector")
app.add_typer(tls_cmd.app, name="tls")


@config_app.command("show")
def config_show(
    config: Path | None = ConfigOption,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Every effective setting, where it came from, secrets masked."""
    loaded = load_or_exit(config)
    rows = effective_items(loaded)
    if as_json:
        print(json.dumps([{"path": p, "value": v, "source": s} for p, v, s in rows], indent=2))
        return
    from rich.table import Table  # rich is loaded by the commands that print tables

    table = Table(title="effective settings")
    for column in ("setting", "value", "source"):
        table.add_column(column)
    for path, value, source in rows:
        table.add_row(path, value, source)
    console.print(table)


@app.command()
def demo(
    config: Path | None = ConfigOption,
    duration: float | None = typer.Option(
        None, "--duration", min=0.1, help="Stop by itself after this many seconds."
    ),
) -> None:
    """Start the embedded stores and the central hub; show live health until Ctrl-C."""
    from aitrading.cli.demo import run_demo

    settings = load_or_exit(config).settings
    raise typer.Exit(asyncio.run(run_demo(settings, duration)))


def run() -> None:
    """The console script: every failure a command did not handle itself becomes one line
    naming what is missing and how to start it, exit status 1 (`cli/failures.py`);
    AITRADING_DEBUG=1 keeps the traceback for developers."""
    try:
        app()
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        err_console.print(explain(exc), soft_wrap=True, markup=False, highlight=False)
        raise SystemExit(EXIT_FAILED) from None
