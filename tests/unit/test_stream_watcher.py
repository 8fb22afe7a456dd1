"""The stream client's URL rule and the CLI's tick line."""

from __future__ import annotations

import pytest

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
