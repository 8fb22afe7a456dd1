"""The stream client's URL rule and the CLI's tick line."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aitrading.cli.main import app
from aitrading.cli.ticks_cmd import tick_line
from aitrading.client.stream_watcher import stream_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:8000", "ws://127.0.0.1:8000/api/v1/stream"),
        ("https://gw.example:443/", "wss://gw.example:443/api/v1/stream"),
        ("wss://gw.example/api/v1/stream", "wss://gw.example/api/v1/stream"),
        ("ws://localhost:8001", "ws://localhost:8001/api/v1/stream"),
    ],
)
def test_gateway_urls_become_stream_urls(given: str, expected: str) -> None:
    assert stream_url(given) == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("http://10.0.0.5:8000", "plaintext only to loopback"),
        ("ws://gw.example", "plaintext only to loopback"),
        ("ftp://gw.example", "not a gateway URL"),
        ("gw.example:8000", "not a gateway URL"),
    ],
)
def test_plaintext_beyond_loopback_and_other_schemes_are_refused(given: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        stream_url(given)


def test_a_tick_line_shows_symbol_utc_time_and_prices() -> None:
    tick = {"symbol": "EURUSD", "time_msc": 1_796_136_895_721, "bid": 1.08642, "ask": 1.08654}
    assert tick_line(tick) == "EURUSD  14:54:55.721  bid 1.08642  ask 1.08654"


def test_watch_without_a_gateway_or_over_plaintext_fails_in_one_line(tmp_path: Path) -> None:
    """Nothing listening: exit 1 naming the gateway and how to start it; plaintext to another
    host: exit 2 naming the rule. Never a traceback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    env = {"AITRADING_TOKEN": "t", "AITRADING_DATA_DIR": str(tmp_path)}
    runner = CliRunner()
    down = runner.invoke(
        app, ["ticks", "watch", "EURUSD", "--gateway", f"http://127.0.0.1:{port}"], env=env
    )
    assert down.exit_code == 1, down.output
    assert "does not answer" in down.output
    assert "aitrading serve api-gateway" in down.output
    plain = runner.invoke(
        app, ["ticks", "watch", "EURUSD", "--gateway", "http://10.0.0.5:8000"], env=env
    )
    assert plain.exit_code == 2, plain.output
    assert "plaintext only to loopback" in plain.output
    assert "Traceback" not in down.output + plain.output
