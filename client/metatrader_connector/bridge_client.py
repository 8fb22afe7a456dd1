"""The connector's side of the v1 protocol: authenticate, send frames, track acks, resend.

Every frame gets a sequence number and stays in `unacked` until the bridge acks it; after a
reconnect everything unacked is sent again (the bridge drops what it already has). An ack
means the ticks are durable on the server, so the connector may forget them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import websockets


@dataclass
class ClientStats:
    frames_sent: int = 0
    acks: int = 0
    ticks_acked: int = 0
    duplicates: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    last_error: str = ""


class BridgeClient:
    def __init__(
        self,
        url: str,
        token: str,
        source: str | None = None,
        on_ack: Callable[[dict[str, Any]], None] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        on_order: Callable[[str], Awaitable[None]] | None = None,
        resend_after_s: float = 1.0,
    ) -> None:
        self._on_order = on_order  # v1.1: signed order instructions from the platform
        self._resend_after = resend_after_s
        self._tasks: set[asyncio.Task[None]] = set()
        self._ssl = ssl_context  # wss://: whom to trust (a pinned CA); default: system CAs
        self._url = url
        self._token = token
        self._source = source
        self._on_ack = on_ack
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._seq = 0
        self.unacked: dict[int, tuple[bytes, int]] = {}
        self.stats = ClientStats()
        self._drained = asyncio.Event()
        self._drained.set()
        self.welcome: dict[str, Any] = {}

    async def connect(self) -> None:
        tls = self._ssl if self._url.startswith("wss://") else None
        self._ws = await websockets.connect(
            self._url, max_size=8 * 1024 * 1024, compression=None, ssl=tls
        )
        auth: dict[str, Any] = {"type": "auth", "v": 1, "token": self._token}
        if self._source:
            auth["source"] = self._source
        await self._ws.send(json.dumps(auth))
        answer = json.loads(await asyncio.wait_for(self._ws.recv(), 10))
        if answer.get("type") != "welcome":
            await self._ws.close()
            raise ConnectionError(f"bridge refused: {answer.get('code')}: {answer.get('message')}")
        self.welcome = answer
        self._reader = asyncio.create_task(self._read())
        for seq in sorted(self.unacked):  # resend what was not acked before a reconnect
            await self._ws.send(self.unacked[seq][0])

    async def send_ticks(self, ticks: list[dict[str, Any]], one_frame: bool = True) -> None:
        if one_frame and len(ticks) == 1:
            await self._send({"type": "tick", "tick": ticks[0]}, 1)
        elif one_frame:
            await self._send({"type": "ticks", "ticks": ticks}, len(ticks))
        else:
            for tick in ticks:
                await self._send({"type": "tick", "tick": tick}, 1)

    async def send_report(self, report: dict[str, Any]) -> int:
        """v1.1: an execution report for an order instruction; kept until acked."""
        return await self._send({"type": "execution_report", **report}, 0)

    async def send_positions(self, login: int, positions: list[dict[str, Any]]) -> int:
        return await self._send({"type": "positions", "login": login, "positions": positions}, 0)

    async def send_account(self, account: dict[str, Any]) -> int:
        return await self._send({"type": "account_info", "account": account}, 0)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resend_later(self, seq: int) -> None:
        """`unavailable`: the frame could not be made safe now; send it again shortly."""
        await asyncio.sleep(self._resend_after)
        entry = self.unacked.get(seq)
        if entry is not None and self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.send(entry[0].decode())

    async def _send(self, frame: dict[str, Any], ticks: int) -> int:
        self._seq += 1
        frame = {**frame, "seq": self._seq}
        raw = json.dumps(frame, separators=(",", ":")).encode()
        self.unacked[self._seq] = (raw, ticks)
        self._drained.clear()
        await self._ws.send(raw.decode())
        self.stats.frames_sent += 1
        return self._seq

    async def wait_acked(self, within_s: float = 30.0) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained.wait(), within_s)
        return not self.unacked

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        for task in list(self._tasks):
            task.cancel()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader

    async def _read(self) -> None:
        async for raw in self._ws:
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "ack":
                entry = self.unacked.pop(message["seq"], None)
                self.stats.acks += 1
                self.stats.ticks_acked += message.get("accepted", 0)
                self.stats.duplicates += message.get("duplicates", 0)
                if entry is not None and self._on_ack is not None:
                    self._on_ack(message)
            elif kind == "order" and self._on_order is not None:
                self._spawn(self._on_order(str(message.get("instruction", ""))))
            elif kind == "error":
                code = message.get("code", "?")
                self.stats.errors[code] = self.stats.errors.get(code, 0) + 1
                self.stats.last_error = f"{code}: {message.get('message')}"
                seq = message.get("seq")
                if seq is not None and code == "unavailable" and seq in self.unacked:
                    self._spawn(self._resend_later(seq))  # not safe yet: the protocol says resend
                elif seq is not None:
                    self.unacked.pop(seq, None)  # refused: resending will not help
            if not self.unacked:
                self._drained.set()


def now_msc() -> int:
    return int(time.time() * 1000)
