"""`aitrading connector login|run|status|doctor`: the MT5 connector on the trader's PC.

`login` writes the config (`connector.json`, no secrets) and puts the MT5 password and the
platform API key (ingest scope) into the protected store; `run` connects the terminal to the
platform and keeps going until Ctrl-C; `status` shows what the running connector reports;
`doctor` checks the process's mitigations and the config's access.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import ssl
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from aitrading.cli.common import EXIT_CONFIG, console, err_console
from aitrading.core.infrastructure.event_wait import wait_event

if TYPE_CHECKING:
    from aitrading.client.config_manager.connector_config import ConnectorConfig
    from aitrading.client.metatrader_connector.connector import ConnectorOptions

app = typer.Typer(help="The MT5 connector: terminal ticks in, signed orders out.")


def default_dir() -> Path:
    base = os.environ.get("LOCALAPPDATA") if sys.platform == "win32" else None
    return Path(base) / "aitrading" / "connector" if base else Path.home() / ".aitrading-connector"


DirOption = typer.Option(None, "--dir", help="config directory (default: per user)")


def _dir(value: Path | None) -> Path:
    return value or default_dir()


@app.command()
def login(
    directory: Path | None = DirOption,
    bridge_url: str | None = typer.Option(None, help="wss://…/api/v1/ingest"),
    gateway_url: str | None = typer.Option(None, help="https://… of the api-gateway"),
    source: str | None = typer.Option(None, help="this terminal's name"),
    symbols: str | None = typer.Option(None, help="comma-separated, e.g. EURUSD,XAUUSD"),
    mt5_login: int | None = typer.Option(None, help="MT5 account number"),
    mt5_server: str | None = typer.Option(None, help="MT5 trade server"),
    pinned_ca: Path | None = typer.Option(None, help="trust only this CA for the platform"),  # noqa: B008
    secrets_stdin: bool = typer.Option(
        False, help="read the MT5 password and the API key from stdin, one per line"
    ),
) -> None:
    """Write the config and store the MT5 password and the platform API key protected."""
    from pydantic import ValidationError

    from aitrading.client.config_manager.connector_config import (
        ConnectorConfig,
        load,
        save,
        store_secrets,
    )
    from aitrading.client.config_manager.secret_store import (
        NoProtectedStoreError,
        protected_store,
    )

    folder = _dir(directory)
    path = folder / "connector.json"
    current: dict[str, Any] = load(path).model_dump(mode="json") if path.exists() else {}
    given = {
        "bridge_url": bridge_url,
        "gateway_url": gateway_url,
        "source": source,
        "symbols": symbols.split(",") if symbols else None,
        "mt5_login": mt5_login,
        "mt5_server": mt5_server,
        "pinned_ca": str(pinned_ca) if pinned_ca else None,
    }
    current.update({k: v for k, v in given.items() if v is not None})
    try:
        config = ConnectorConfig.model_validate(current)
    except ValidationError as exc:
        err_console.print(f"connector config is invalid:\n{exc}")
        raise typer.Exit(EXIT_CONFIG) from None
    try:
        store = protected_store(folder)
    except NoProtectedStoreError as exc:
        err_console.print(str(exc))
        raise typer.Exit(EXIT_CONFIG) from None
    if secrets_stdin:
        lines = sys.stdin.read().splitlines()
        if len(lines) < 2 or not lines[0] or not lines[1]:
            err_console.print("stdin must hold the MT5 password, then the API key")
            raise typer.Exit(EXIT_CONFIG)
        password, api_key = lines[0], lines[1]
    else:
        password = typer.prompt("MT5 password", hide_input=True)
        api_key = typer.prompt("platform API key (ingest scope)", hide_input=True)
    save(path, config)
    store_secrets(store, password, api_key)
    console.print(f"saved {path} (no secrets in it); secrets in the {store.name} store")


@app.command()
def run(
    directory: Path | None = DirOption,
    simulator: bool = typer.Option(False, help="a simulated terminal instead of MetaTrader 5"),
) -> None:
    """Connect the terminal to the platform until Ctrl-C."""
    from aitrading.client.config_manager.connector_config import API_KEY, MT5_PASSWORD, load
    from aitrading.client.config_manager.secret_store import (
        NoProtectedStoreError,
        protected_store,
    )

    folder = _dir(directory)
    try:
        config = load(folder / "connector.json")
        store = protected_store(folder)
    except (OSError, ValueError, NoProtectedStoreError) as exc:
        err_console.print(f"connector: {exc} (run `aitrading connector login` first)")
        raise typer.Exit(EXIT_CONFIG) from None
    password, api_key = store.get(MT5_PASSWORD), store.get(API_KEY)
    if not password or not api_key:
        err_console.print("connector: no stored secrets; run `aitrading connector login`")
        raise typer.Exit(EXIT_CONFIG)
    asyncio.run(_run(folder, config, password, api_key, simulator))


async def _run(folder: Path, config: Any, password: str, api_key: str, simulator: bool) -> None:
    from aitrading.client.metatrader_connector.connector import Connector
    from aitrading.client.metatrader_connector.mt5_terminal import MetaTrader5Terminal
    from aitrading.client.metatrader_connector.outbox import Outbox
    from aitrading.client.metatrader_connector.platform_tokens import ConnectorTokens
    from aitrading.client.metatrader_connector.simulator_terminal import SimulatorTerminal
    from aitrading.client.metatrader_connector.terminal import Terminal
    from aitrading.client.security.instruction_guard import InstructionGuard, LocalLimits
    from aitrading.client.security.platform_keys import PlatformKeys

    tls = ssl.create_default_context(cafile=str(config.pinned_ca) if config.pinned_ca else None)
    tls.minimum_version = ssl.TLSVersion.TLSv1_3
    terminal: Terminal
    sim: SimulatorTerminal | None = None
    if simulator:
        sim = SimulatorTerminal()
        terminal = sim
    else:
        terminal = MetaTrader5Terminal(
            config.mt5_login, password, config.mt5_server, config.mt5_path
        )
    token = ConnectorTokens(config.gateway_url, api_key, verify=tls)
    keys = PlatformKeys(config.gateway_url, verify=tls)
    limits = LocalLimits(config.max_order_volume, frozenset(config.symbols))
    connector = Connector(
        options_from(config, tls),
        terminal,
        Outbox(folder / "outbox.db"),
        token,
        guard=lambda source: InstructionGuard(
            folder / "instructions.db", keys.public_key, config.issuer, source, limits
        ),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C raises instead
            loop.add_signal_handler(sig, stop.set)
    await connector.start()
    console.print(f"connector running; status: aitrading connector status --dir {folder}")
    try:
        while not stop.is_set():
            if sim is not None:
                sim.advance(0.2)
            _write_status(folder / "status.json", connector.status())
            await wait_event(stop, 0.2)
    finally:
        await connector.stop()
        _write_status(folder / "status.json", {**connector.status(), "stopped": True})


def _write_status(path: Path, status: dict[str, Any]) -> None:
    status["written_at"] = time.time()
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(status))
    partial.replace(path)


@app.command()
def status(directory: Path | None = DirOption) -> None:
    """What the running connector last reported: links, breakers, outbox, tick ages."""
    path = _dir(directory) / "status.json"
    if not path.exists():
        err_console.print(f"no status at {path}: is the connector running?")
        raise typer.Exit(1)
    report = json.loads(path.read_text())
    age = time.time() - float(report.get("written_at", 0))
    stale = " (STALE: the connector is not running)" if age > 5 or report.get("stopped") else ""
    console.print(
        f"source {report.get('source')}  outbox {report['outbox_depth']} frames"
        f"  capture {'PAUSED (outbox full)' if report['capture_paused'] else 'running'}"
        f"  updated {age:.1f}s ago{stale}"
    )
    checkpoint_error = report.get("outbox_checkpoint", {}).get("last_error")
    if checkpoint_error:
        console.print(
            f"outbox checkpoint FAILING: {checkpoint_error} (nothing is lost; the log grows"
            " and fresh tick pages reach the disk only once a checkpoint lands)",
            markup=False,
        )
    from rich.table import Table  # rich is loaded by the commands that print tables

    table = Table("link", "state", "breaker", "in flight", "last error")
    for link in report["links"]:
        table.add_row(
            str(link["link"]),
            link["state"],
            link["breaker"],
            str(link["in_flight"]),
            link["last_error"],
        )
    console.print(table)
    terminal = report.get("terminal", {})
    console.print(
        f"terminal: breaker {terminal.get('breaker')}"
        + (f"  last error: {terminal['last_error']}" if terminal.get("last_error") else "")
    )
    for symbol, seconds in sorted(report["last_tick_age_s"].items()):
        console.print(f"{symbol}: last tick {seconds:.1f}s ago")
    if stale:
        raise typer.Exit(1)


@app.command()
def doctor(directory: Path | None = DirOption) -> None:
    """Exploit mitigations (DEP, ASLR, CFG) and who can read the config."""
    from aitrading.client.security.doctor import config_access, mitigations

    findings = [*mitigations(), config_access(_dir(directory) / "connector.json")]
    failed = False
    for finding in findings:
        mark = {True: "ok", False: "FAIL", None: "n/a"}[finding.ok]
        failed = failed or finding.ok is False
        console.print(f"{mark:5} {finding.check}: {finding.detail}")
    if failed:
        raise typer.Exit(1)


def options_from(config: ConnectorConfig, tls: ssl.SSLContext | None) -> ConnectorOptions:
    """What `connector.json` sets of the connector's behaviour; the rest keeps its defaults."""
    from aitrading.client.metatrader_connector.connector import ConnectorOptions

    return ConnectorOptions(
        url=config.bridge_url,
        source=config.source,
        connections=config.connections,
        symbols=tuple(config.symbols),
        capture_interval_s=config.capture_interval_ms / 1000,
        ssl_context=tls,
    )
