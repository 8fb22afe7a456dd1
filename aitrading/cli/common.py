"""What every CLI command shares: loading settings (exit 2 on bad config) and the console."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import typer

from aitrading.core.infrastructure.central_hub import HealthStatus
from aitrading.core.infrastructure.config_manager import ConfigError, LoadedSettings, load_settings

if TYPE_CHECKING:
    from rich.console import Console

EXIT_CONFIG = 2

STATUS_STYLE = {
    HealthStatus.HEALTHY: "green",
    HealthStatus.DEGRADED: "yellow",
    HealthStatus.UNHEALTHY: "red",
}


class _ConsoleOnFirstUse:
    """A rich `Console` made when something is first printed. rich is 60 ms of imports, and
    `aitrading serve` (every service's start, every pod restart) loads this module but prints
    through it only when it fails."""

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def materialized(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.materialized(), name)


def real_console(proxy: Console) -> Console:
    """The Console itself, for APIs that check its type (rich's `Live`)."""
    return proxy.materialized() if isinstance(proxy, _ConsoleOnFirstUse) else proxy


console = cast("Console", _ConsoleOnFirstUse(stderr=False))
err_console = cast("Console", _ConsoleOnFirstUse(stderr=True))

ConfigOption = typer.Option(
    None,
    "--config",
    "-c",
    help="YAML settings file (default: $AITRADING_CONFIG_FILE).",
    exists=False,
    dir_okay=False,
)


def load_or_exit(config: Path | None) -> LoadedSettings:
    """Settings, or every problem printed to stderr and exit status 2."""
    try:
        return load_settings(config_file=config)
    except ConfigError as exc:
        err_console.print(f"[bold red]invalid configuration[/] ({len(exc.problems)} problem(s)):")
        for problem in exc.problems:
            err_console.print(
                f"  - [bold]{problem.path}[/]: {problem.message} [dim](from {problem.source})[/]"
            )
        raise typer.Exit(EXIT_CONFIG) from None


PasswordStdinOption = typer.Option(
    False, "--password-stdin", help="read the password from standard input"
)


def password_from_stdin(requested: bool) -> str:
    """The password piped in on stdin (never a command-line argument, which `ps` shows);
    exit 2 when `--password-stdin` was not given."""
    if not requested:
        err_console.print("pass --password-stdin and pipe the password in")
        raise typer.Exit(2)
    return sys.stdin.readline().rstrip("\n")
