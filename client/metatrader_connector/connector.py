"""The MT5 connector: terminal → durable outbox → N persistent connections → data-bridge,
and signed instructions back → validation → terminal → execution reports.

- Capture: each symbol's ticks are read from the terminal by cursor, numbered, and put in the
  outbox together with the advanced cursor (one transaction, no fsync of its own), handed to
  the dispatcher before that transaction commits (safe: see the outbox); when the outbox is full,
  capture pauses — the terminal keeps its history, nothing is dropped. Capture rounds and the
  forgetting of acked frames run on one outbox thread, so the event loop — which receives the
  acks — never waits for the outbox's commits (it did: a 2-6 ms step of the loop every few
  hundred ticks, the tail of bench/connector.py).
- Delivery: every frame in the outbox that is not in flight is sent on one of the connected
  links (round robin, `connections` of them, the seed's 5); an ack removes it from the outbox;
  a link that drops gives its in-flight frames back, and they go out again on another link.
  Fresh frames reach the dispatcher in memory (`send_queue.py`); the rest is recovered from
  the outbox. The bridge drops what it already has (tick identity), so a resend is never a
  duplicate.
- Each link reconnects with exponential backoff and jitter (capped) and has its own circuit
  breaker (explicit states), shown in `status()`.
- Instructions are admitted by the instruction guard (signature, audience, expiry, replay,
  local limits), executed in a worker thread (the MT5 package blocks), and every outcome —
  refusals included — goes back as an `execution_report` through the outbox.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import json
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import msgspec
import websockets

from aitrading.client.metatrader_connector.capture_clock import CaptureClock
from aitrading.client.metatrader_connector.outbox import Cursor, Outbox, OutboxFullError
from aitrading.client.metatrader_connector.send_queue import SendQueue
from aitrading.client.metatrader_connector.terminal import Terminal, TerminalTick, capture_page
from aitrading.client.security.instruction_guard import InstructionGuard
from aitrading.core.infrastructure.circuit_breaker import BreakerState, CircuitBreaker
from aitrading.core.infrastructure.event_wait import wait_event
from aitrading.core.market.order_instructions import InstructionKind, InstructionRejectedError

_log = logging.getLogger(__name__)
CAPTURE_BURST_S = 0.05
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class ConnectorOptions:
    url: str
    source: str | None = None  # the terminal's name, part of the tick source id
    connections: int = 5
    symbols: tuple[str, ...] = ("EURUSD",)
    page: int = 1000
    # MT5 gives no push: a tick waits up to this long to be read (the seed's 50 ms budget)
    capture_interval_s: float = 0.01
    backoff_initial_s: float = 0.5
    backoff_cap_s: float = 30.0
    breaker_threshold: int = 5
    breaker_cooldown_s: float = 10.0
    heartbeat_s: float = 10.0
    account_every_s: float = 10.0  # account_info + positions (free-margin checks use them)
    pending_poll_s: float = 1.0  # how often resting orders are asked about
    ssl_context: ssl.SSLContext | None = None


class LinkState(StrEnum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"


class LinkEvent(StrEnum):
    DIAL = "dial"  # the link's task starts a connection
    UP = "up"  # the bridge welcomed it
    DOWN = "down"  # a connect failed, the socket ended, or a send on it failed


_LINK_MOVES: dict[tuple[LinkState, LinkEvent], LinkState] = {
    (LinkState.DISCONNECTED, LinkEvent.DIAL): LinkState.CONNECTING,
    (LinkState.CONNECTING, LinkEvent.UP): LinkState.CONNECTED,
    (LinkState.CONNECTING, LinkEvent.DOWN): LinkState.DISCONNECTED,
    (LinkState.CONNECTED, LinkEvent.DOWN): LinkState.DISCONNECTED,
    # the dispatcher saw a send fail before the link's task saw its socket end
    (LinkState.DISCONNECTED, LinkEvent.DOWN): LinkState.DISCONNECTED,
}


def link_transition(state: LinkState, event: LinkEvent) -> LinkState:
    """The one place a link's state changes; a move not in the table is a bug, said loudly."""
    try:
        return _LINK_MOVES[(state, event)]
    except KeyError:
        raise ValueError(f"a link cannot go from {state.value} on {event.value}") from None


@dataclass
class Link:
    """One persistent connection to data-bridge."""

    index: int
    breaker: CircuitBreaker
    state: LinkState = LinkState.DISCONNECTED
    ws: Any = None
    seq: int = 0
    in_flight: dict[int, int] = field(default_factory=dict)  # seq -> outbox frame id
    attempts: int = 0
    last_error: str = ""


@dataclass
class ConnectorStats:
    ticks_captured: int = 0
    frames_acked: int = 0
    ticks_acked: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    instructions_refused: int = 0
    instructions_executed: int = 0
    capture_paused: bool = False


class Connector:
    def __init__(
        self,
        options: ConnectorOptions,
        terminal: Terminal,
        outbox: Outbox,
        token: Callable[[], Awaitable[str]],
        guard: Callable[[str], InstructionGuard] | None = None,
        capture_clock: CaptureClock | None = None,
    ) -> None:
        self.options = options
        self.terminal = terminal
        self.outbox = outbox
        self._token = token
        self._make_guard = guard  # built once the bridge told us our source id
        self.guard: InstructionGuard | None = None
        self.links = [
            Link(i, CircuitBreaker(options.breaker_threshold, options.breaker_cooldown_s))
            for i in range(options.connections)
        ]
        self.stats = ConnectorStats()
        # the terminal's own breaker: a terminal that stops answering is reported, and
        # instructions are refused at once (with a report) instead of piling up behind it
        self.terminal_breaker = CircuitBreaker(
            options.breaker_threshold, options.breaker_cooldown_s
        )
        self.terminal_error = ""
        self._assigned: set[int] = set()
        self._queue = SendQueue()
        self._outbox_thread: concurrent.futures.ThreadPoolExecutor | None = None
        # when each capture round is due; a test passes one on a fake clock
        self._capture_clock = capture_clock or CaptureClock(options.capture_interval_s)
        self._items: dict[int, int] = {}  # frame id -> ticks in it, while in flight
        # every link of this connector receives each instruction: handle it once, quietly
        self._recent: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._wake = asyncio.Event()
        self._acked_ids: list[int] = []  # acked, not yet forgotten by the outbox
        self._unavailable: dict[int, int] = {}  # frame id -> `unavailable` answers so far
        self._forget = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._running: set[asyncio.Task[None]] = set()
        self._rng = random.Random()  # noqa: S311 - jitter, not security
        self.source_id: str | None = None

    # lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self.terminal.connect)
        self._tasks = [asyncio.create_task(self._link_loop(link)) for link in self.links]
        self._tasks.append(asyncio.create_task(self._capture_loop(), name="capture"))
        self._tasks.append(asyncio.create_task(self._dispatch_loop(), name="dispatch"))
        self._tasks.append(asyncio.create_task(self._account_loop(), name="account"))
        self._tasks.append(asyncio.create_task(self._pending_loop(), name="pending"))
        self._tasks.append(asyncio.create_task(self._forget_loop(), name="forget-acked"))

    async def stop(self) -> None:
        pending = set(self._tasks)
        for _ in range(3):  # a task that does not end when cancelled is cancelled again
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=5)
            if not pending:
                break
        if pending:
            _log.error("connector tasks did not stop: %s", [t.get_name() for t in pending])
        await asyncio.gather(*(self._close(link) for link in self.links))
        await self._forget_acked()
        if self._outbox_thread is not None:
            await asyncio.to_thread(self._outbox_thread.shutdown, True)
            self._outbox_thread = None
        await asyncio.to_thread(self.terminal.disconnect)

    @staticmethod
    async def _close(link: Link) -> None:
        """A polite close, bounded: a peer that does not answer the closing handshake (a TLS
        shutdown can wait for half a minute) is cut off rather than waited for."""
        if link.ws is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(link.ws.close(), 2)
        with contextlib.suppress(Exception):
            link.ws.transport.abort()

    def status(self) -> dict[str, Any]:
        cursors = self.outbox.cursors()
        now_ms = int(time.time() * 1000)
        return {
            "source": self.source_id,
            "outbox_depth": self.outbox.depth(),
            "outbox_checkpoint": self.outbox.checkpoint_state(),
            "capture_paused": self.stats.capture_paused,
            "links": [
                {
                    "link": link.index,
                    "state": link.state.value,
                    "breaker": link.breaker.state.value,
                    "in_flight": len(link.in_flight),
                    "last_error": link.last_error,
                }
                for link in self.links
            ],
            "last_tick_age_s": {
                symbol: round((now_ms - c.time_msc) / 1000, 3) for symbol, c in cursors.items()
            },
            "terminal": {
                "breaker": self.terminal_breaker.state.value,
                "last_error": self.terminal_error,
            },
            "ticks_captured": self.stats.ticks_captured,
            "frames_acked": self.stats.frames_acked,
            "instructions_executed": self.stats.instructions_executed,
            "instructions_refused": self.stats.instructions_refused,
        }

    # capture ----------------------------------------------------------------------------

    async def _on_outbox_thread(self, work: Callable[..., Any], *args: Any) -> Any:
        """Run `work` on the one thread that writes the outbox (and reads the terminal for
        capture): its fsyncs never hold up the event loop."""
        if self._outbox_thread is None:
            self._outbox_thread = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="outbox"
            )
        return await asyncio.get_running_loop().run_in_executor(self._outbox_thread, work, *args)

    async def capture_once(self) -> int:
        """One round over every symbol (a burst of no length); how many ticks entered the
        outbox."""
        loop = asyncio.get_running_loop()
        total: int = await self._on_outbox_thread(self._capture_burst, loop, 0.0)
        return total

    def _capture_round(self, loop: asyncio.AbstractEventLoop) -> int:
        """On the outbox thread: read each symbol's new ticks, store them, hand them over."""
        self._capture_clock.round_started()
        cursors = self.outbox.cursors()
        total = 0
        for symbol in self.options.symbols:
            ticks, cursor = capture_page(
                self.terminal, symbol, cursors.get(symbol), self.options.page
            )
            if not ticks or cursor is None:
                continue
            self._put_ticks(symbol, ticks, cursor, loop)
            total += len(ticks)
        self.stats.ticks_captured += total
        return total

    def _put(self, kind: str, body: dict[str, Any], items: int) -> None:
        """On the loop: a frame other than ticks (reports, account state) into the outbox."""
        if "seq" in body:
            raise ValueError("a frame's seq is the link's to give")  # see `_send`
        encoded = json.dumps(body, separators=(",", ":")).encode()
        self._queue.offer(self.outbox.put(kind, encoded, items), encoded, 0)
        self._wake.set()

    def _put_ticks(
        self,
        symbol: str,
        ticks: list[TerminalTick],
        cursor: Cursor,
        loop: asyncio.AbstractEventLoop,
    ) -> int:
        """One page of captured ticks: numbered, stored and its cursor advanced in one commit.
        The page is offered to the dispatcher before that commit's fsync, which then runs
        while the page is on its way (why that is safe: the outbox's docstring)."""

        def render(first: int) -> bytes:
            numbered = [t.numbered(first + i) for i, t in enumerate(ticks)]
            return _encode({"type": "ticks", "ticks": numbered})

        def staged(frame_id: int, body: bytes) -> None:
            self._queue.offer(frame_id, body, len(ticks))
            loop.call_soon_threadsafe(self._wake.set)

        return self.outbox.put_ticks(symbol, render, len(ticks), cursor, staged)

    def _capture_burst(self, loop: asyncio.AbstractEventLoop, seconds: float) -> int:
        """On the outbox thread: capture rounds, each when the capture clock says it is due,
        for `seconds`. The thread sleeps between rounds itself: a round per event-loop wake-up
        and thread hop cost the loop 500 wake-ups a second at 2 ms, and each tick waited for
        both."""
        clock = self._capture_clock
        until = clock.now() + seconds
        total = self._capture_round(loop)
        while clock.now() + (pause := clock.delay()) < until:
            clock.sleep(pause)
            total += self._capture_round(loop)
        return total

    async def _capture_loop(self) -> None:
        # A burst ends at least every CAPTURE_BURST_S, so the terminal's breaker, a pause for a
        # full outbox and the outbox's other work (forgetting acked frames, recovery) are
        # never held up longer than that.
        loop = asyncio.get_running_loop()
        while True:
            if self.terminal_breaker.allow():
                try:
                    await self._on_outbox_thread(self._capture_burst, loop, CAPTURE_BURST_S)
                    self.stats.capture_paused = False
                    self.terminal_breaker.success()
                except OutboxFullError:
                    self.stats.capture_paused = True  # the terminal keeps the ticks: later
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self._terminal_failed(exc)
                await asyncio.sleep(self._capture_clock.delay())
            else:
                await asyncio.sleep(self.options.capture_interval_s)

    def _terminal_failed(self, exc: Exception) -> None:
        self.terminal_error = f"{type(exc).__name__}: {exc}"[:200]
        self.terminal_breaker.failure()
        _log.warning("terminal: %s", self.terminal_error)

    # delivery ---------------------------------------------------------------------------

    async def _dispatch_loop(self) -> None:
        turn = 0
        while True:
            self._wake.clear()
            connected = [link for link in self.links if link.state is LinkState.CONNECTED]
            if not connected:
                self._queue.drop_fresh()
            else:
                frames = self._queue.take_fresh()
                if self._queue.recovery_due():
                    frames += await self._recover()
                for frame_id, body, ticks in frames:
                    if frame_id in self._assigned:
                        continue
                    link = connected[turn % len(connected)]
                    turn += 1
                    self._items[frame_id] = ticks
                    if not await self._send(link, frame_id, body):
                        # Its socket is gone, though the link's own task has not seen it yet:
                        # never pick this link again until it reconnects. Kept CONNECTED, a
                        # dead socket failed every send at once, recovery never awaited, and
                        # the loop spun on the pass without ever letting the link reconnect.
                        link.state = link_transition(link.state, LinkEvent.DOWN)
                        self._queue.need_recovery()
                        break
                if self._queue.recovery_due():
                    await asyncio.sleep(0)  # more to recover: the other tasks run first
                    continue
            await wait_event(self._wake, 0.5)

    async def _recover(self, page: int = 2000) -> list[tuple[int, bytes, int]]:
        """Up to `page` frames of the outbox that are neither acked nor in flight."""
        found: list[tuple[int, bytes, int]] = []
        after = 0
        while len(found) < page:
            frames = self.outbox.pending(after, page)  # its own connection: never waits
            found += [
                (f.id, f.body, f.items if f.kind == "ticks" else 0)
                for f in frames
                if f.id not in self._assigned
            ]
            if len(frames) < page:
                self._queue.recovered(complete=len(found) <= page)
                return found[:page]
            after = frames[-1].id
        self._queue.recovered(complete=False)
        return found[:page]

    async def _send(self, link: Link, frame_id: int, body: bytes) -> bool:
        """Send a stored frame with this link's next seq, spliced in front of its fields: the
        body was rendered once, when it was stored (`_put` keeps `seq` out of bodies)."""
        link.seq += 1
        frame = b'{"seq":%d,' % link.seq + body[1:]
        link.in_flight[link.seq] = frame_id
        self._assigned.add(frame_id)
        try:
            await link.ws.send(frame)
        except Exception:
            link.in_flight.pop(link.seq, None)
            self._assigned.discard(frame_id)
            return False
        return True

    async def _link_loop(self, link: Link) -> None:
        while True:
            if not link.breaker.allow():
                await asyncio.sleep(0.2)
                continue
            link.state = link_transition(link.state, LinkEvent.DIAL)
            try:
                await self._connect(link)
            except asyncio.CancelledError:
                link.state = link_transition(link.state, LinkEvent.DOWN)  # stopped mid-dial
                raise
            except Exception as exc:
                link.last_error = f"{type(exc).__name__}: {exc}"[:200]
                link.breaker.failure()
                link.state = link_transition(link.state, LinkEvent.DOWN)
                link.attempts += 1
                await asyncio.sleep(self._backoff(link.attempts))
                continue
            link.breaker.success()
            link.attempts = 0
            link.state = link_transition(link.state, LinkEvent.UP)
            self._wake.set()
            try:
                await self._serve(link)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                link.last_error = f"{type(exc).__name__}: {exc}"[:200]
            finally:
                link.state = link_transition(link.state, LinkEvent.DOWN)
                for frame_id in link.in_flight.values():
                    self._assigned.discard(frame_id)  # go out again on another link
                link.in_flight.clear()
                self._queue.need_recovery()
                self._wake.set()

    def _backoff(self, attempts: int) -> float:
        ceiling = min(self.options.backoff_cap_s, self.options.backoff_initial_s * 2**attempts)
        return self._rng.uniform(ceiling / 2, ceiling)  # "equal jitter"

    async def _connect(self, link: Link) -> None:
        tls = self.options.ssl_context if self.options.url.startswith("wss://") else None
        token = await self._token()  # first: a token that cannot be had leaves no socket open
        # No permessage-deflate: it cost both ends CPU on every small frame (the profile of
        # bench/connector.py), and a tick stream is a few tens of KB/s.
        ws = await websockets.connect(
            self.options.url, ssl=tls, max_size=8 * 1024 * 1024, close_timeout=2, compression=None
        )
        auth: dict[str, Any] = {"type": "auth", "v": 1, "token": token}
        if self.options.source:
            auth["source"] = self.options.source
        await ws.send(json.dumps(auth))
        answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if answer.get("type") != "welcome":
            await ws.close()
            raise ConnectionError(f"refused: {answer.get('code')}: {answer.get('message')}")
        self.source_id = str(answer["source"])
        if self.guard is None and self._make_guard is not None:
            self.guard = self._make_guard(self.source_id)
        link.ws = ws

    async def _serve(self, link: Link) -> None:
        heartbeat = asyncio.create_task(self._heartbeats(link))
        try:
            async for raw in link.ws:
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "ack":
                    self._acked(link, int(message["seq"]))
                elif kind == "error":
                    self._refused(link, message)
                elif kind == "order":
                    task = asyncio.create_task(
                        self._instruction(str(message.get("instruction", "")))
                    )
                    self._running.add(task)  # kept until done (the loop holds weak refs)
                    task.add_done_callback(self._running.discard)
        finally:
            heartbeat.cancel()
            # the heartbeat's own end (cancelled, or failed on a dead socket) must never
            # replace what ends this link — a cancellation swallowed here kept the link
            # reconnecting after stop(); gather hands back its outcome instead of raising it
            await asyncio.gather(heartbeat, return_exceptions=True)

    async def _heartbeats(self, link: Link) -> None:
        while True:
            await asyncio.sleep(self.options.heartbeat_s)
            link.seq += 1
            await link.ws.send(json.dumps({"type": "heartbeat", "seq": link.seq}))

    def _acked(self, link: Link, seq: int) -> None:
        frame_id = link.in_flight.pop(seq, None)
        if frame_id is None:
            return  # a heartbeat
        self._acked_ids.append(frame_id)  # stays assigned until the outbox forgot it
        self._unavailable.pop(frame_id, None)
        self._forget.set()
        self.stats.frames_acked += 1
        self.stats.ticks_acked += self._items.pop(frame_id, 0)

    async def _forget_loop(self) -> None:
        while True:
            await self._forget.wait()
            await self._forget_acked()

    async def _forget_acked(self) -> None:
        """Drop acked frames from the outbox, every ack that arrived meanwhile in one commit."""
        self._forget.clear()
        frame_ids, self._acked_ids = self._acked_ids, []
        if not frame_ids:
            return
        await self._on_outbox_thread(self.outbox.ack_many, frame_ids)
        for frame_id in frame_ids:
            self._assigned.discard(frame_id)

    def _release(self, frame_id: int) -> None:
        """A frame refused as `unavailable` may go out again."""
        self._assigned.discard(frame_id)
        self._queue.need_recovery()
        self._wake.set()

    def _refused(self, link: Link, message: dict[str, Any]) -> None:
        seq = message.get("seq")
        code = str(message.get("code", "?"))
        frame_id = link.in_flight.pop(seq, None) if isinstance(seq, int) else None
        if frame_id is None:
            return
        self._assigned.discard(frame_id)
        if code == "unavailable":
            # not safe yet: it stays in the outbox and goes out again — after a backoff, so a
            # frame the bridge cannot place now (the trading-engine away) is not resent in a
            # tight loop that holds up the ticks behind it on the same link
            self._assigned.add(frame_id)
            attempts = self._unavailable.get(frame_id, 0) + 1
            self._unavailable[frame_id] = attempts
            asyncio.get_running_loop().call_later(self._backoff(attempts), self._release, frame_id)
            return
        # judged by the bridge (bad data, an order the engine refuses): resending cannot help
        self.stats.refused[code] = self.stats.refused.get(code, 0) + 1
        _log.warning("frame refused (%s): %s", code, message.get("message"))
        self.outbox.ack(frame_id)

    # instructions -----------------------------------------------------------------------

    async def _instruction(self, token: str) -> None:
        if self.guard is None or token in self._recent:
            return
        self._recent[token] = None
        if len(self._recent) > 10_000:
            self._recent.popitem(last=False)
        try:
            instruction = self.guard.admit(token)
        except InstructionRejectedError as exc:
            self.stats.instructions_refused += 1
            _log.warning("instruction refused: %s", exc)
            order_id, kind = _unverified_order(token)
            if order_id is not None and "replayed" not in str(exc):
                self._refusal(order_id, kind, f"refused by the connector: {exc}")
            return
        order_id = str(instruction.order["id"])
        if not self.terminal_breaker.allow():
            self._refusal(
                order_id, instruction.kind, f"terminal not answering: {self.terminal_error}"
            )
            return
        run = (
            self.terminal.place
            if instruction.kind is InstructionKind.PLACE
            else self.terminal.cancel
        )
        try:
            outcome = await asyncio.to_thread(run, instruction.order)
        except Exception as exc:  # the terminal did not answer: say so, never stay silent
            self._terminal_failed(exc)
            self._refusal(order_id, instruction.kind, f"terminal error: {exc}")
            return
        self.terminal_breaker.success()
        self.stats.instructions_executed += 1
        self._report(instruction.order["id"], outcome)
        self._watch(instruction.order, outcome)
        with contextlib.suppress(Exception):
            await self.put_account_state()

    def _watch(self, order: dict[str, Any], outcome: Any) -> None:
        """Resting orders are watched (durably) until the terminal ends them."""
        if outcome.ticket is None:
            return
        if outcome.status.value in ("accepted", "partially_filled"):
            self.outbox.remember_resting(int(outcome.ticket), {**order, "ticket": outcome.ticket})
        elif outcome.status.value in ("filled", "canceled", "expired", "rejected"):
            self.outbox.forget_resting(int(outcome.ticket))

    async def check_pending(self) -> int:
        """Report what happened at the terminal to resting orders; how many ended."""
        resting = self.outbox.resting()
        if not resting or not self.terminal_breaker.allow():
            return 0
        try:
            updates = await asyncio.to_thread(self.terminal.pending_updates, resting)
        except Exception as exc:
            self._terminal_failed(exc)
            return 0
        self.terminal_breaker.success()
        for ticket, outcome in updates.items():
            order = resting[ticket]
            self._report(str(order["id"]), outcome)  # reported first: a crash here repeats
            self._watch(order, outcome)  # the report, which the engine applies once
        if updates:
            with contextlib.suppress(Exception):
                await self.put_account_state()
        return len(updates)

    async def _pending_loop(self) -> None:
        while True:
            try:
                await self.check_pending()
            except asyncio.CancelledError:
                raise
            except OutboxFullError:
                pass  # asked again next round: the terminal still knows
            except Exception as exc:
                _log.warning("resting orders not checked: %s", exc)
            await asyncio.sleep(self.options.pending_poll_s)

    def _refusal(self, order_id: str, kind: InstructionKind, message: str) -> None:
        """Reported back, never silent: a refused place is `rejected`, a refused cancel
        `cancel_rejected` (TRADE_RETCODE_REJECT)."""
        status = "rejected" if kind is InstructionKind.PLACE else "cancel_rejected"
        self._put(
            "execution_report",
            {
                "type": "execution_report",
                "order_id": order_id,
                "status": status,
                "retcode": 10006,
                "message": message[:500],
            },
            1,
        )

    def _report(self, order_id: str, outcome: Any) -> None:
        report: dict[str, Any] = {
            "type": "execution_report",
            "order_id": order_id,
            "status": outcome.status.value,
            "retcode": outcome.retcode,
            "filled_volume": outcome.filled_volume,
            "message": outcome.message[:500],
        }
        if outcome.ticket is not None:
            report["ticket"] = outcome.ticket
        if outcome.fill_price is not None:
            report["fill_price"] = outcome.fill_price
        self._put("execution_report", report, 1)

    async def put_account_state(self) -> None:
        """The account and its positions, as the terminal has them now, into the outbox."""
        positions = await asyncio.to_thread(self.terminal.positions)
        account = await asyncio.to_thread(self.terminal.account)
        login = int(account["login"])
        self._put("positions", {"type": "positions", "login": login, "positions": positions}, 0)
        account["time_msc"] = int(time.time() * 1000)
        self._put("account_info", {"type": "account_info", "account": account}, 0)

    async def _account_loop(self) -> None:
        while True:
            try:
                await self.put_account_state()
            except asyncio.CancelledError:
                raise
            except OutboxFullError:
                pass  # the next round sends a fresher one
            except Exception as exc:
                _log.warning("account state not read: %s", exc)
            await asyncio.sleep(self.options.account_every_s)

    @property
    def breaker_states(self) -> list[BreakerState]:
        return [link.breaker.state for link in self.links]


def _unverified_order(token: str) -> tuple[str | None, InstructionKind]:
    """The order id and kind of an instruction that failed validation (to report it)."""
    import jwt

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None, InstructionKind.PLACE
    order = claims.get("order")
    order_id = order.get("id") if isinstance(order, dict) else None
    kind = InstructionKind.CANCEL if claims.get("kind") == "cancel" else InstructionKind.PLACE
    valid = isinstance(order_id, str) and len(order_id) == 32
    return (order_id if valid else None), kind
