"""Malformed input over the services' own interfaces: a clear error, never a crash.

A corpus of bad frames and tokens goes to every WebSocket path (data-bridge's ingest and
stream, and the gateway's proxies of both) and bad tokens to HTTP: each gets an `error`
frame or a documented close code (4401 before authentication) — never an abnormal closure
(1006) — HTTP gets 401 with the error shape, and no handler logs a traceback. Binary auth
frames, which the protocol allows, are accepted like text ones.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from aitrading.cli.mt5_sim_cmd import development_token
from aitrading.core.security.scopes import TokenScope

pytestmark = pytest.mark.integration


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


BAD_KID_TOKEN = ".".join(
    [_b64(json.dumps({"alg": "EdDSA", "kid": 123}).encode()), _b64(b'{"sub":"x"}'), _b64(b"sig")]
)
BAD_FIRST_FRAMES: list[str | bytes] = [
    b"\xff\xfe\xfd",  # binary, not UTF-8
    "[" * 100_000,  # deeply nested
    "{" * 50_000 + "}" * 50_000,
    json.dumps({"type": "auth", "v": 1, "token": BAD_KID_TOKEN}),
    json.dumps({"type": "auth", "v": 1, "token": 123}),
    json.dumps({"type": "auth", "v": 1, "token": ["a"]}),
    "null",
    "[]",
    "1e999999",
    '{"type": "auth", "v": 1, "token": "' + "a" * 20_000 + '"}',
    "",
]
BAD_LATER_FRAMES: list[str | bytes] = [
    b"\xff\xfe\xfd",
    "[" * 100_000,
    "null",
    '{"type": "heartbeat", "seq": 1e999}',
    '{"type": "tick", "seq": 1, "tick": {"symbol": {"nested": [[[[]]]]}}}',
]


class _Tracebacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or "Traceback" in record.getMessage():
            self.found.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture
def tracebacks() -> Iterator[_Tracebacks]:
    handler = _Tracebacks()
    names = ["", "uvicorn", "uvicorn.error", "uvicorn.asgi", "aitrading"]
    for name in names:
        logging.getLogger(name).addHandler(handler)
    yield handler
    for name in names:
        logging.getLogger(name).removeHandler(handler)


async def _first_frame_refused(url: str, frame: str | bytes) -> tuple[dict[str, Any], int]:
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(frame)
        answer = json.loads(await asyncio.wait_for(ws.recv(), 15))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 15)
    assert closed.value.rcvd is not None, f"abnormal closure (1006) after {frame[:40]!r}"
    return answer, closed.value.rcvd.code


@pytest.mark.parametrize(
    "path",
    [
        "bridge_ws:/api/v1/ingest",
        "bridge_ws:/api/v1/stream",
        "ws:/api/v1/ingest",
        "ws:/api/v1/stream",
    ],
)
async def test_bad_first_frames_get_an_error_and_4401(
    gateway: dict[str, Any], tracebacks: _Tracebacks, path: str
) -> None:
    base, route = path.split(":", 1)
    for frame in BAD_FIRST_FRAMES:
        answer, code = await _first_frame_refused(gateway[base] + route, frame)
        assert answer["type"] == "error", (frame[:40], answer)
        assert code == 4401, (frame[:40], code)
    assert tracebacks.found == []


@pytest.mark.parametrize("base", ["bridge_ws", "ws"])
async def test_binary_auth_frames_are_accepted_and_bad_frames_later_keep_the_connection(
    gateway: dict[str, Any], tracebacks: _Tracebacks, base: str
) -> None:
    token = await development_token(gateway["settings"], "malformed", scopes=(TokenScope.INGEST,))
    async with websockets.connect(gateway[base] + "/api/v1/ingest", max_size=None) as ws:
        await ws.send(json.dumps({"type": "auth", "v": 1, "token": token}).encode())
        assert json.loads(await asyncio.wait_for(ws.recv(), 15))["type"] == "welcome"
        for frame in BAD_LATER_FRAMES:
            await ws.send(frame)
            answer = json.loads(await asyncio.wait_for(ws.recv(), 15))
            assert answer["type"] == "error", (frame[:40], answer)
        await ws.send(json.dumps({"type": "heartbeat", "seq": 99}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 15))["seq"] == 99
    assert tracebacks.found == []


async def test_bad_tokens_over_http_get_401_with_the_error_shape(
    gateway: dict[str, Any], tracebacks: _Tracebacks
) -> None:
    http = gateway["http"]
    for token in (BAD_KID_TOKEN, "a.b", "é" * 10, "x" * 10_000):
        answer = await http.get(
            "/api/v1/market/ticks",
            params={"symbol": "EURUSD", "start": 0, "end": 1},
            headers={"authorization": f"Bearer {token}".encode()},
        )
        assert answer.status_code == 401, (token[:20], answer.text)
        assert answer.json()["error"]["code"] == "unauthorized"
        out = await http.post("/auth/logout", headers={"authorization": f"Bearer {token}".encode()})
        assert out.status_code == 401, out.text
    assert tracebacks.found == []
