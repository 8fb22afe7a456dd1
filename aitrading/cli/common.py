"""What every CLI command shares: loading settings (exit 2 on bad config) and the console."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from aitrading.core.infrastructure.central_hub import HealthStatus
from aitrading.core.infrastructure.config_manager import ConfigError, LoadedSettings, load_settings

EXIT_CONFIG = 2

STATUS_STYLE = {
    HealthStatus.HEALTHY: "green",
    HealthStatus.DEGRADED: "yellow",
    HealthStatus.UNHEALTHY: "red",
}

console = Console()
err_console = Console(stderr=True)

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
