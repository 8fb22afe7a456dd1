"""What a service's start does not load: `aitrading serve` is every container's command, and
each library below cost 40-400 ms of every start and pod restart before it was imported only
where it is used (docs/performance.md, "Service start")."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = r"""
import json, sys
import {module}
print(json.dumps(sorted(name for name in {unwanted} if name in sys.modules)))
"""


@pytest.mark.parametrize(
    ("module", "unwanted"),
    [
        # the CLI that `aitrading serve` runs: its other commands' libraries stay unloaded
        ("aitrading.cli.main", ("httpx", "rich", "psutil", "alembic", "kopf")),
        # database-service: alembic only for a database behind the head
        ("aitrading.services.database_service.app", ("alembic", "sqlalchemy", "mako")),
    ],
)
def test_a_service_start_does_not_load(module: str, unwanted: tuple[str, ...]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module, unwanted=unwanted)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
