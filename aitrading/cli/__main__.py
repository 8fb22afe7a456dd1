"""`python -m aitrading.cli` is the `aitrading` command."""

from aitrading.cli.main import run

run()
