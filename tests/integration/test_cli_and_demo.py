"""The CLI and `make demo`'s command as a user runs them: real processes, real servers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from aitrading.core.infrastructure.central_hub import CentralHub, HealthStatus
from aitrading.core.infrastructure.config_manager import load_settings
from aitrading.core.stores.components import store_components

from .conftest import embedded_env

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "aitrading.cli"]


def run_cli(
    args: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        env={**os.environ, **env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def servers_using(data_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(data_dir) in cmdline and ("postgres" in cmdline or "redis-server" in cmdline):
            found.append(proc)
    return found


def test_stores_up_status_down(tmp_path: Path) -> None:
    env = embedded_env(tmp_path)
    try:
        up = run_cli(["stores", "up"], env)
        assert up.returncode == 0, up.stderr
        assert "postgres started" in up.stdout
        assert "redis started" in up.stdout

        again = run_cli(["stores", "up"], env)
        assert "already running" in again.stdout

        status = run_cli(["stores", "status"], env)
        assert status.returncode == 0, status.stdout + status.stderr
        lines = {
            line.split("│")[1].strip(): line
            for line in status.stdout.splitlines()
            if line.count("│") > 2
        }
        for store in ("postgres", "redis", "clickhouse"):
            assert "healthy" in lines[store], status.stdout
        assert "AITRADING_WEAVIATE_URL" in lines["weaviate"]
        assert "AITRADING_ARANGO_URL" in lines["arango"]
    finally:
        down = run_cli(["stores", "down"], env)
    assert down.returncode == 0
    assert servers_using(tmp_path) == []
    after = run_cli(["stores", "status"], env)
    assert after.returncode == 1
    assert "unhealthy" in after.stdout


def test_invalid_config_exits_2(tmp_path: Path) -> None:
    result = run_cli(["stores", "up"], {**embedded_env(tmp_path), "AITRADING_REDIS_PORT": "abc"})
    assert result.returncode == 2
    assert "redis.port" in result.stderr


def test_demo_becomes_healthy_and_leaves_nothing_behind(tmp_path: Path) -> None:
    """No speed is asserted here (start-up time lives in bench/startup.py): the demo must
    become healthy within a generous bound, whatever the machine's load."""
    env = {**os.environ, **embedded_env(tmp_path), "PYTHONUNBUFFERED": "1", "COLUMNS": "300"}
    proc = subprocess.Popen(
        [*CLI, "demo"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    started = time.monotonic()
    seen: list[str] = []
    healthy_after = None
    try:
        while time.monotonic() - started < 300:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            if line.startswith("overall=healthy"):
                healthy_after = time.monotonic() - started
                break
        assert healthy_after is not None, "".join(seen)
        for name in (
            "postgres",
            "redis",
            "clickhouse",
            "database-service",
            "data-bridge",
            "trading-engine",
            "api-gateway",
            "mt5-sim",
            "demo-trader",
        ):
            assert f"{name}=healthy" in seen[-1]
        ticks = orders = False
        while not (ticks and orders):  # ticks and orders flow end to end
            line = proc.stdout.readline()
            assert line, "".join(seen)
            seen.append(line)
            ticks = ticks or (line.startswith("mt5-sim:") and " 0 ticks acked" not in line)
            # the simulated terminal fills most orders (and requotes or rejects a few)
            orders = orders or (line.startswith("demo-trader:") and " filled" in line)
        assert servers_using(tmp_path), "the demo's servers should be running"
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    assert "stopped" in rest
    assert any(line.startswith("optional imports: chdb") for line in seen), "".join(seen)
    shown = next(line for line in seen if line.startswith("demo login:"))
    saved = json.loads((tmp_path / "demo-login.json").read_text())
    assert saved["password"] in shown  # shown once, on the first start
    assert (tmp_path / "demo-login.json").stat().st_mode & 0o777 == 0o600
    assert servers_using(tmp_path) == []


async def test_hub_reports_a_store_killed_under_it_and_keeps_running(tmp_path: Path) -> None:
    settings = load_settings(
        environ={**embedded_env(tmp_path), "AITRADING_HUB_HEALTH_INTERVAL_S": "0.1"}
    ).settings
    # chdb is one path per process and the session fixture owns it; use a real HTTP-less
    # subset here: the PostgreSQL and Redis components.
    hub = CentralHub(settings.hub)
    for component in store_components(settings):
        if not component.name.startswith("clickhouse"):
            hub.register(component)
    await hub.start()
    try:
        assert (await hub.wait_healthy(10)).status is HealthStatus.HEALTHY
        redis_pid = int((tmp_path / "redis" / "redis.pid").read_text())
        os.kill(redis_pid, signal.SIGKILL)
        for _ in range(100):
            current = hub.health()
            if current.status is HealthStatus.UNHEALTHY:
                break
            await hub.wait_for_change(1.0)
        assert current.status is HealthStatus.UNHEALTHY
        assert "redis" in current.reason
        assert current.components["postgres"].status is HealthStatus.HEALTHY
    finally:
        await hub.stop()
    assert servers_using(tmp_path) == []
