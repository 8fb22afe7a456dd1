"""The readiness probe the operator gives a PostgreSQL StatefulSet, run against a real server.

A PostgreSQL that listens is not yet one that serves: in crash recovery, or as here a standby
with `hot_standby = off`, it accepts the TCP connection (all a `tcpSocket` probe checks) and
refuses every session. The probe must call it unready then, and ready once it serves.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from aitrading.core.infrastructure.config_manager import load_settings
from aitrading.core.stores.embedded import EmbeddedPostgres, EmbeddedServerError, port_is_free
from aitrading.operator.render import database_readiness
from tests.support.waiting import until

from .conftest import embedded_env

pytestmark = pytest.mark.integration


def _probe(server: EmbeddedPostgres, port: int) -> int:
    """The rendered probe's exit status, with the binaries and port of the test's server."""
    command = database_readiness("postgres")["exec"]["command"]
    argv = [str(server._bin_dir() / command[0])]
    argv += [f"--port={port}" if a.startswith("--port=") else a for a in command[1:]]
    return subprocess.run(argv, check=False, capture_output=True, timeout=60).returncode


async def test_the_postgres_probe_is_ready_only_once_the_server_serves(tmp_path: Path) -> None:
    settings = load_settings(environ=embedded_env(tmp_path)).settings
    server = EmbeddedPostgres(settings)
    port = settings.postgres.port
    server.start()
    try:
        assert _probe(server, port) == 0, "a serving PostgreSQL must be ready"
    finally:
        server.stop()
    # the same cluster as a standby that refuses sessions: it listens, it does not serve
    (server.pgdata / "standby.signal").touch()
    auto_conf = server.pgdata / "postgresql.auto.conf"
    auto_conf.write_text(auto_conf.read_text() + "hot_standby = off\n")
    outcome: list[BaseException] = []

    def start() -> None:  # never ready: it ends when the server is killed below
        try:
            server.start(timeout_s=600)
        except EmbeddedServerError as exc:
            outcome.append(exc)

    starter = threading.Thread(target=start, daemon=True)
    starter.start()
    try:
        await until(lambda: not port_is_free(port), "the standby listens")
        await until(lambda: server.pid() is not None, "the standby wrote its pid file")
        assert _probe(server, port) == 1, "a listening PostgreSQL that refuses is not ready"
    finally:
        pid = server.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        starter.join(120)
    assert outcome, "the standby's start should have failed once it was killed"
