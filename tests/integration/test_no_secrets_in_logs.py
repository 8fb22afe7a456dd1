"""No token in any log: a real `aitrading serve` process, tokens in query strings and headers.

Clients put tokens where they should not (`?token=…`, `?access_token=…`); uvicorn's access
line used to write the full request line. After a run, neither the process's output nor any
file under its data directory (log spill, spool) nor the hot log tier holds the token.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

from aitrading.core.infrastructure.config_manager import Settings
from aitrading.core.stores.clickhouse import ClickHouseStore

from .conftest import env_for, free_port

pytestmark = pytest.mark.integration


def test_tokens_in_query_strings_never_reach_a_log(
    settings: Settings, clickhouse: ClickHouseStore, key_file: Path, tmp_path: Path
) -> None:
    del clickhouse, key_file
    secret = "tok" + secrets.token_hex(16)
    port = free_port()
    env = {**os.environ, **env_for(settings, tmp_path, port, free_port())}
    env["AITRADING_LOG_LEVEL"] = "DEBUG"
    out = (tmp_path / "serve.out").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "aitrading", "serve", "database-service"],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "serve.out").read_text()[-3000:]
            try:
                if httpx.get(f"{base}/health/live", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        for path in (
            f"/health/live?token={secret}",
            f"/api/v1/ticks?symbol=EURUSD&start=0&end=1&access_token={secret}",
            f"/api/v1/nothing-here?api_key={secret}",
        ):
            httpx.get(base + path, headers={"authorization": f"Bearer {secret}"}, timeout=10)
        proc.terminate()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        out.close()
    output = (tmp_path / "serve.out").read_text(errors="replace")
    assert "GET /health/live?…" in output, output[-2000:]  # the access line is there ...
    assert secret not in output  # ... without the token
    for file in tmp_path.rglob("*"):
        if file.is_file():
            assert secret.encode() not in file.read_bytes(), file
    hot = redis.Redis.from_url(env["AITRADING_REDIS_URL"])
    for key in hot.scan_iter(match="*log*", count=1000):
        if hot.type(key) == b"stream":
            for _, fields in hot.xrange(key, count=100_000):
                assert not any(secret.encode() in v for v in fields.values()), key
    hot.close()
