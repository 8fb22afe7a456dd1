"""`aitrading ticks dead-letter list`: acked ticks that storage refused, with the reason.

Asked of database-service (the owner of the tick tables), so it works the same against the
embedded stack and a cluster (`AITRADING_SERVICES_DATABASE_SERVICE_URL`).
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import typer

from aitrading.cli.common import ConfigOption, console, err_console, load_or_exit
from aitrading.services.common.urls import database_service_url

app = typer.Typer(help="Ticks in storage.", no_args_is_help=True)
dead_letter = typer.Typer(help="Ticks that were acked but that storage refused.")
app.add_typer(dead_letter, name="dead-letter")


@dead_letter.command("list")
def list_(
    limit: int = typer.Option(100, min=1, max=10_000, help="how many, newest first"),
    as_json: bool = typer.Option(False, "--json", help="one JSON array"),
    config: Path | None = ConfigOption,
) -> None:
    """The latest dead letters: when, from which source, why, and the tick as sent."""
    settings = load_or_exit(config).settings
    url = database_service_url(settings)
    try:
        answer = httpx.get(
            f"{url}/api/v1/ticks/dead-letters",
            params={"limit": limit},
            timeout=settings.services.request_timeout_s,
        )
    except httpx.HTTPError as exc:
        err_console.print(
            f"database-service does not answer at {url} ({type(exc).__name__}); "
            "start it with `aitrading serve database-service` (or `make demo`)"
        )
        raise typer.Exit(1) from None
    if answer.status_code != 200:
        err_console.print(f"database-service answered {answer.status_code}: {answer.text[:300]}")
        raise typer.Exit(1)
    letters = answer.json()
    if as_json:
        console.print_json(json.dumps(letters))
        return
    if not letters:
        console.print("no dead letters: every acked tick was stored")
        return
    for letter in letters:
        console.print(
            f"{letter['received_at']}  {letter['source'] or '-'}  {letter['reason']}\n"
            f"    {letter['payload']}",
            markup=False,
            highlight=False,
        )
    console.print(f"{len(letters)} dead letter(s)")
