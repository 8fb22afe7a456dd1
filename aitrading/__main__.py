"""`python -m aitrading` is the `aitrading` command."""

from aitrading.cli.main import run

run()
