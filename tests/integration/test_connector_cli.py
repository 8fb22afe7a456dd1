"""`aitrading connector login|run|status` as a user runs them, against the whole order stack:
five links up, ticks stored, and an order placed through the gateway executed by the
connector's (simulated) terminal — signed, validated, reported, FILLED."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from .trading_stack import StackFactory, bearer, market, order_in, wait_for

pytestmark = pytest.mark.integration
REPO = Path(__file__).parents[2]


async def cli(*args: str, env: dict[str, str], stdin: bytes = b"") -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aitrading.cli",
        "connector",
        *args,
        env=env,
        cwd=REPO,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(stdin), 120)
    return int(proc.returncode or 0), out.decode()


async def test_login_run_status_and_an_order_filled(
    make_stack: StackFactory, trader: dict[str, Any], tmp_path: Path
) -> None:
    stack = await make_stack()
    folder = tmp_path / "connector"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PYTHON_KEYRING_BACKEND": "tests.support.file_keyring.FileKeyring",
        "AITRADING_TEST_KEYRING_FILE": str(tmp_path / "keyring.json"),
        "COLUMNS": "200",
    }
    code, out = await cli(
        "login",
        "--dir",
        str(folder),
        "--bridge-url",
        stack.ingest,
        "--gateway-url",
        str(stack.http.base_url).rstrip("/"),
        "--source",
        "desk1",
        "--symbols",
        "EURUSD,GBPUSD",
        "--mt5-login",
        "5001234",
        "--mt5-server",
        "Sim-Demo",
        "--secrets-stdin",
        env=env,
        stdin=f"mt5 password 123\n{trader['connector_key']}\n".encode(),
    )
    assert code == 0, out
    config = (folder / "connector.json").read_bytes()
    assert b"mt5 password" not in config
    assert trader["connector_key"].encode() not in config

    run = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aitrading.cli",
        "connector",
        "run",
        "--dir",
        str(folder),
        "--simulator",
        env=env,
        cwd=REPO,
    )
    try:

        async def all_links_up() -> dict[str, Any] | None:
            path = folder / "status.json"
            if not path.exists():
                return None
            report: dict[str, Any] = json.loads(path.read_text())
            states = {link["state"] for link in report["links"]}
            ok = states == {"connected"} and report["frames_acked"] > 0
            return report if ok else None

        report = await wait_for(all_links_up, "five links connected and ticks acked", 60)
        assert len(report["links"]) == 5
        code, out = await cli("status", "--dir", str(folder), env=env)
        assert code == 0, out
        assert "connected" in out
        assert "EURUSD: last tick" in out

        headers = await bearer(stack, trader["pro"]["email"])
        placed = await stack.http.post(
            "/api/v1/orders", json=market(account="desk1"), headers=headers
        )
        assert placed.status_code == 201, placed.text
        filled = await order_in(stack, headers, placed.json()["id"], "filled", "rejected")
        assert filled["status"] == "filled", filled
        assert filled["events"][-1]["actor"].endswith(":desk1")
        # a buy limit 1% over the simulated market (EURUSD ~1.085): it rests at the terminal,
        # is filled on the connector's next look, and that later fill is reported too
        limit = {**market(account="desk1"), "type": "limit", "price": 1.0958}
        rested = await stack.http.post("/api/v1/orders", json=limit, headers=headers)
        assert rested.status_code == 201, rested.text
        done = await order_in(stack, headers, rested.json()["id"], "filled", "rejected")
        assert [e["to"] for e in done["events"]][-2:] == ["accepted", "filled"], done
    finally:
        run.send_signal(signal.SIGINT)
        await asyncio.wait_for(run.wait(), 60)
    assert run.returncode == 0
    code, out = await cli("status", "--dir", str(folder), env=env)
    assert code == 1
    assert "STALE" in out
