"""`aitrading ticks dead-letter list`: acked ticks that storage refused, with the reason;
`aitrading ticks watch`: live ticks through the gateway's stream.

Asked of database-service (the owner of the tick tables), so it works the same against the
embedded stack and a cluster (`AITRADING_SERVICES_DATABASE_SERVICE_URL`).
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from aitrading.cli.common import ConfigOption, console, err_console, load_or_exit
from aitrading.core.infrastructure.config_manager import TOKEN_ENV
from aitrading.services.common.urls import api_gateway_url, database_service_url

app = typer.Typer(help="Ticks in storage, and the live stream.", no_args_is_help=True)
dead_letter = typer.Typer(help="Ticks that were acked but that storage refused.")
app.add_typer(dead_letter, name="dead-letter")


@dead_letter.command("list")
def list_(
    limit: int = typer.Option(100, min=1, max=10_000, help="how many, newest first"),
    as_json: bool = typer.Option(False, "--json", help="one JSON array"),
    config: Path | None = ConfigOption,
) -> None:
    """The latest dead letters: when, from which source, why, and the tick as sent."""
    import httpx  # here, not at import: `aitrading serve` loads this module too

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


@app.command("watch")
def watch(
    symbols: Annotated[list[str], typer.Argument(help="symbols to follow, e.g. EURUSD GBPUSD")],
    count: int | None = typer.Option(
        None, "--count", min=1, help="stop after this many ticks (default: until Ctrl-C)"
    ),
    gateway: str | None = typer.Option(
        None, "--gateway", help="the api-gateway's URL (default: this machine's, for make demo)"
    ),
    ca_file: Annotated[
        Path | None,
        typer.Option("--ca", exists=True, dir_okay=False, help="CA to trust for https:// / wss://"),
    ] = None,
    as_json: bool = typer.Option(False, "--json", help="one JSON object per tick"),
    config: Path | None = ConfigOption,
) -> None:
    """Follow live ticks through the gateway's stream. The token comes from AITRADING_TOKEN
    (never an argument: a command line is visible to every user of the machine)."""
    from aitrading.client.stream_watcher import StreamStoppedError, watch_ticks

    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        err_console.print(
            f"set {TOKEN_ENV} to an access token first (POST /auth/token on the gateway;"
            " `make demo` prints the command)"
        )
        raise typer.Exit(1)
    settings = load_or_exit(config).settings
    base = gateway or api_gateway_url(settings)

    async def follow() -> None:
        seen = 0
        async for tick in watch_ticks(base, token, symbols, ca_file):
            console.print(
                json.dumps(tick) if as_json else tick_line(tick),
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            seen += 1
            if count is not None and seen >= count:
                return

    try:
        asyncio.run(follow())
    except KeyboardInterrupt:
        return
    except ValueError as exc:
        err_console.print(str(exc))
        raise typer.Exit(2) from None
    except StreamStoppedError as exc:
        err_console.print(f"ticks watch: {exc}")
        raise typer.Exit(1) from None
    except OSError as exc:
        err_console.print(
            f"the api-gateway does not answer at {base} ({type(exc).__name__}); "
            "start it with `aitrading serve api-gateway` (or `make demo`)"
        )
        raise typer.Exit(1) from None


def tick_line(tick: dict[str, Any]) -> str:
    """`EURUSD  14:50:01.123  bid 1.08512  ask 1.08514` (UTC)."""
    stamp = datetime.fromtimestamp(int(tick["time_msc"]) / 1000, tz=UTC)
    return (
        f"{tick['symbol']}  {stamp:%H:%M:%S}.{stamp.microsecond // 1000:03d}"
        f"  bid {tick['bid']}  ask {tick['ask']}"
    )
