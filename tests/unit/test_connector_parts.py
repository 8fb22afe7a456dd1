"""The connector's parts without a network: the outbox's durability and bound, capture that
pauses when full and resumes without loss, and instruction outcomes that are always reported
— a refused or failed one too, and a silent terminal trips its breaker."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from aitrading.client.metatrader_connector.capture_clock import CaptureClock
from aitrading.client.metatrader_connector.connector import (
    Connector,
    ConnectorOptions,
    LinkState,
)
from aitrading.client.metatrader_connector.outbox import Cursor, Outbox, OutboxFullError
from aitrading.client.metatrader_connector.send_queue import SendQueue
from aitrading.client.metatrader_connector.simulator_terminal import SimulatorTerminal
from aitrading.client.metatrader_connector.terminal import TerminalTick
from aitrading.client.security.instruction_guard import InstructionGuard
from aitrading.core.infrastructure.circuit_breaker import BreakerState
from aitrading.core.market.order_instructions import InstructionKind, sign_instruction
from aitrading.core.security.jwt_manager import KeyRing, SigningKey
from tests.support.waiting import until

T0 = 1_800_000_000_000


def test_the_outbox_survives_a_reopen_and_refuses_when_full(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", max_frames=3)
    first = box.put("account_info", b'{"a":1}', 0)
    numbered: list[int] = []

    def render(start: int) -> bytes:
        numbered.append(start)
        return f'{{"first":{start}}}'.encode()

    box.put_ticks("EURUSD", render, 10, Cursor(T0, 2))
    box.put("positions", b'{"b":2}', 0)
    with pytest.raises(OutboxFullError):
        box.put("positions", b'{"c":3}', 0)
    with pytest.raises(OutboxFullError):
        box.put_ticks("EURUSD", render, 1, Cursor(T0 + 1, 1))
    box.close()  # or a crash: everything committed is in the WAL
    again = Outbox(tmp_path / "o.db", max_frames=4)
    bodies = [f.body for f in again.pending()]
    assert bodies == [b'{"a":1}', f'{{"first":{numbered[0]}}}'.encode(), b'{"b":2}']
    assert again.cursors() == {"EURUSD": Cursor(T0, 2)}
    again.put_ticks("EURUSD", render, 1, Cursor(T0 + 1, 1))
    assert numbered[-1] == numbered[0] + 10  # the symbol's numbering goes on after a reopen
    again.ack(first)
    assert again.depth() == 3


def test_a_page_is_all_or_nothing_and_numbered_the_same_when_taken_again(tmp_path: Path) -> None:
    """The frame, its numbers and the cursor it advances commit together: a failure after the
    page was handed over (its commit never lands) leaves none of them behind, and the same
    page captured again gets the same numbers — and a frame id of its own."""
    box = Outbox(tmp_path / "o.db")
    box.put_ticks("EURUSD", lambda start: str(start).encode(), 5, Cursor(T0, 1))
    handed: list[tuple[int, bytes]] = []

    def lost(frame_id: int, body: bytes) -> None:
        handed.append((frame_id, body))
        raise OSError("disk gone before the commit")

    with pytest.raises(OSError, match="disk gone"):
        box.put_ticks("EURUSD", lambda start: str(start).encode(), 7, Cursor(T0 + 9, 1), lost)
    assert box.depth() == 1
    assert box.cursors() == {"EURUSD": Cursor(T0, 1)}
    again = box.put_ticks("EURUSD", lambda start: str(start).encode(), 7, Cursor(T0 + 9, 1))
    assert [f.body for f in box.pending()] == [b"1", handed[0][1]]
    assert again != handed[0][0]  # an ack meant for the lost page can never remove this one


_CRASH_BEFORE_COMMIT = """
import os, sys
from pathlib import Path
from aitrading.client.metatrader_connector.outbox import Cursor, Outbox

box = Outbox(Path(sys.argv[1]))
def crash(frame_id, body):
    sys.stdout.write(body.decode())
    sys.stdout.flush()
    os._exit(9)  # the page is on its way to the bridge; its commit never happens
box.put_ticks("EURUSD", lambda first: str(first).encode(), 4, Cursor(int(sys.argv[2]), 1), crash)
"""


def test_a_crash_before_the_commit_leaves_the_terminal_to_resend_the_same_ticks(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    box = Outbox(tmp_path / "o.db")
    box.put_ticks("EURUSD", lambda first: str(first).encode(), 3, Cursor(T0, 1))
    box.close()
    crashed = subprocess.run(
        [sys.executable, "-c", _CRASH_BEFORE_COMMIT, str(tmp_path / "o.db"), str(T0 + 5)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert crashed.returncode == 9, crashed.stderr
    sent_first = int(crashed.stdout)
    after = Outbox(tmp_path / "o.db")
    assert after.cursors() == {"EURUSD": Cursor(T0, 1)}  # capture resumes before that page
    assert [f.body for f in after.pending()] == [b"1"]
    taken_again: list[int] = []
    after.put_ticks(
        "EURUSD", lambda first: taken_again.append(first) or b"again", 4, Cursor(T0 + 5, 1)
    )
    assert taken_again == [sent_first] == [4]  # the same ticks, the same identities


def test_each_symbol_is_numbered_on_its_own_from_a_fixed_start(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    firsts: dict[str, list[int]] = {"EURUSD": [], "XAUUSD": []}

    def page(symbol: str, items: int, at: int) -> None:
        box.put_ticks(
            symbol, lambda first: firsts[symbol].append(first) or b"{}", items, Cursor(at, 1)
        )

    page("EURUSD", 3, T0)
    page("XAUUSD", 2, T0)
    page("EURUSD", 1, T0 + 1)
    page("XAUUSD", 5, T0 + 1)
    assert firsts == {"EURUSD": [1, 4], "XAUUSD": [1, 3]}


def test_an_outbox_numbered_by_one_counter_goes_on_above_it(tmp_path: Path) -> None:
    """Outboxes written before per-symbol numbering had one counter for every symbol: each
    symbol — known or new — goes on above the last number it gave, so none is given twice."""
    import sqlite3

    old = sqlite3.connect(tmp_path / "o.db")
    old.executescript(
        "CREATE TABLE frames (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,"
        " body BLOB NOT NULL, items INTEGER NOT NULL);"
        "CREATE TABLE cursors (symbol TEXT PRIMARY KEY, time_msc INTEGER NOT NULL,"
        " seen_at_time INTEGER NOT NULL);"
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
        f"INSERT INTO cursors VALUES ('EURUSD', {T0}, 1);"
        "INSERT INTO meta VALUES ('sequence', 42);"
        "INSERT INTO frames (kind, body, items) VALUES ('ticks', '{}', 1);"
        "DELETE FROM frames;"  # acked: its id must still never come back
    )
    old.commit()
    old.close()
    box = Outbox(tmp_path / "o.db")
    firsts: list[int] = []
    for symbol in ("EURUSD", "GBPUSD"):
        frame_id = box.put_ticks(
            symbol, lambda first: firsts.append(first) or b"{}", 1, Cursor(T0 + 1, 1)
        )
        assert frame_id > 1
    assert firsts == [43, 43]
    assert box.cursors()["EURUSD"] == Cursor(T0 + 1, 1)


def connector(tmp_path: Path, terminal: Any, max_frames: int = 100) -> Connector:
    async def token() -> str:
        return "unused"

    return Connector(
        ConnectorOptions(
            url="ws://127.0.0.1:9/none",
            symbols=("EURUSD",),
            page=2,
            breaker_threshold=2,
            breaker_cooldown_s=3600,
        ),
        terminal,
        Outbox(tmp_path / "o.db", max_frames=max_frames),
        token,
    )


def test_capture_pauses_when_full_and_resumes_without_loss(tmp_path: Path) -> None:
    terminal = SimulatorTerminal()
    terminal.record(
        [TerminalTick("EURUSD", T0 + i, 1.1 + i * 1e-5, 1.2, 0.0, 0, 0.0, 6) for i in range(5)]
    )
    conn = connector(tmp_path, terminal, max_frames=1)
    assert asyncio.run(conn.capture_once()) == 2
    with pytest.raises(OutboxFullError):
        asyncio.run(conn.capture_once())
    captured = []
    while conn.outbox.depth():
        frame = conn.outbox.pending()[0]
        captured += [t["time_msc"] for t in json.loads(frame.body)["ticks"]]
        conn.outbox.ack(frame.id)  # the bridge acked: room again
        asyncio.run(conn.capture_once())
    assert captured == [T0 + i for i in range(5)]


class SilentTerminal(SimulatorTerminal):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def place(self, order: dict[str, Any]) -> Any:
        self.calls += 1
        raise TimeoutError("terminal does not answer")


def reports(conn: Connector) -> list[dict[str, Any]]:
    return [json.loads(f.body) for f in conn.outbox.pending() if f.kind == "execution_report"]


def test_every_instruction_outcome_is_reported_and_a_silent_terminal_trips(tmp_path: Path) -> None:
    keys = KeyRing(SigningKey.generate())
    terminal = SilentTerminal()
    conn = connector(tmp_path, terminal)
    conn.guard = InstructionGuard(tmp_path / "seen.db", keys.public_key, "aitrading", "u1:t1")

    def instruction(order_id: str, key: KeyRing = keys) -> str:
        order = {"id": order_id, "symbol": "EURUSD", "side": "buy", "type": "market", "volume": 0.1}
        return sign_instruction(key, "aitrading", "u1:t1", InstructionKind.PLACE, order, 30).token

    forged = instruction("f" * 32, KeyRing(SigningKey.generate()))
    asyncio.run(conn._instruction(forged))
    assert reports(conn)[-1]["status"] == "rejected"
    assert "unknown key" in reports(conn)[-1]["message"]
    for order_id in ("a" * 32, "b" * 32):
        asyncio.run(conn._instruction(instruction(order_id)))
        assert "terminal error" in reports(conn)[-1]["message"]
    assert conn.terminal_breaker.state is BreakerState.OPEN
    assert conn.status()["terminal"]["breaker"] == "open"
    asyncio.run(conn._instruction(instruction("c" * 32)))
    assert terminal.calls == 2  # refused without waiting on the terminal again
    assert "terminal not answering" in reports(conn)[-1]["message"]
    replay = instruction("a" * 32)
    before = len(reports(conn))
    asyncio.run(conn._instruction(replay))  # already executed once: no second report
    assert len(reports(conn)) == before
    assert conn.stats.instructions_refused == 2


def test_a_resting_order_is_watched_durably_and_its_fill_reported_once(tmp_path: Path) -> None:
    keys = KeyRing(SigningKey.generate())
    conn = connector(tmp_path, SimulatorTerminal())
    conn.guard = InstructionGuard(tmp_path / "seen.db", keys.public_key, "aitrading", "u1:t1")
    order = {
        "id": "r" * 32,
        "symbol": "EURUSD",
        "side": "buy",
        "type": "limit",
        "price": 10.0,
        "volume": 0.1,
    }
    token = sign_instruction(keys, "aitrading", "u1:t1", InstructionKind.PLACE, order, 30).token
    asyncio.run(conn._instruction(token))
    assert [r["status"] for r in reports(conn)] == ["accepted"]
    assert len(conn.outbox.resting()) == 1  # on disk: a restart keeps watching it
    assert asyncio.run(conn.check_pending()) == 1
    assert [r["status"] for r in reports(conn)] == ["accepted", "filled"]
    assert conn.outbox.resting() == {}
    assert asyncio.run(conn.check_pending()) == 0  # reported once


class DeadSocket:
    """A link whose socket died under the heartbeat: sends fail, nothing arrives."""

    async def send(self, _: str) -> None:
        raise ConnectionError("socket is gone")

    def __aiter__(self) -> DeadSocket:
        return self

    async def __anext__(self) -> str:
        await asyncio.Event().wait()  # nothing ever arrives
        raise StopAsyncIteration


def test_a_link_stops_when_cancelled_even_after_its_heartbeat_failed(tmp_path: Path) -> None:
    """The heartbeat's failure must not replace the cancellation: it did, and a stopped
    connector's link went on reconnecting (found by the wss test under CI load)."""
    from aitrading.client.metatrader_connector.connector import Link
    from aitrading.core.infrastructure.circuit_breaker import CircuitBreaker

    async def scenario() -> bool:
        conn = connector(tmp_path, SimulatorTerminal())
        conn.options = dataclasses.replace(conn.options, heartbeat_s=0.01)
        link = Link(0, CircuitBreaker())
        link.ws = DeadSocket()
        serving = asyncio.create_task(conn._serve(link))
        await asyncio.sleep(0.1)  # the heartbeat has failed by now
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await serving
        return serving.cancelled()

    assert asyncio.run(scenario())


def test_a_frame_answered_unavailable_goes_out_again_only_after_a_backoff(tmp_path: Path) -> None:
    """Resent at once, a positions frame the bridge could not place (trading-engine away) went
    round in a tight loop that held up the ticks behind it on the link (found by profiling the
    connector benchmark)."""
    from aitrading.client.metatrader_connector.connector import Link
    from aitrading.core.infrastructure.circuit_breaker import CircuitBreaker

    async def scenario() -> tuple[bool, bool, bool]:
        conn = connector(tmp_path, SimulatorTerminal())
        conn.options = dataclasses.replace(conn.options, backoff_initial_s=0.05)
        frame_id = conn.outbox.put("positions", b'{"type":"positions"}', 1)
        link = Link(0, CircuitBreaker())
        link.in_flight[1] = frame_id
        conn._assigned.add(frame_id)
        conn._refused(link, {"type": "error", "code": "unavailable", "seq": 1})
        held_back = frame_id in conn._assigned  # the dispatcher skips assigned frames
        still_kept = [f.id for f in conn.outbox.pending()] == [frame_id]
        await until(lambda: frame_id not in conn._assigned, "the frame released")
        return held_back, still_kept, conn._wake.is_set()

    assert asyncio.run(scenario()) == (True, True, True)


class RecordingSocket:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, frame: bytes) -> None:
        self.sent.append(json.loads(frame))


def test_frames_stored_while_no_link_was_up_go_out_once_from_the_outbox(tmp_path: Path) -> None:
    """Fresh frames reach the dispatcher in memory; while nobody is connected their bodies
    are dropped and a recovery pass finds them in the outbox — each sent exactly once, with
    the link's seq spliced in front of the stored body."""

    async def scenario() -> tuple[list[dict[str, Any]], list[int]]:
        terminal = SimulatorTerminal()
        conn = connector(tmp_path, terminal)
        conn._queue = SendQueue(recovery_every_s=3600)  # no periodic pass to hide a lost one
        terminal.record([TerminalTick("EURUSD", T0, 1.1, 1.2, 0.0, 0, 0.0, 6)])
        await conn.capture_once()  # stored and offered, nobody connected
        dispatch = asyncio.create_task(conn._dispatch_loop())
        await asyncio.sleep(0.05)  # the dispatcher ran with no link up
        link = conn.links[0]
        link.ws = socket = RecordingSocket()
        link.state = LinkState.CONNECTED
        conn._wake.set()
        terminal.record([TerminalTick("EURUSD", T0 + 1, 1.3, 1.4, 0.0, 0, 0.0, 6)])
        await conn.capture_once()  # fresh while a link is up
        await until(lambda: len(socket.sent) >= 2, "both frames sent")
        await asyncio.sleep(0.2)  # a second send of either would show up here
        dispatch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await dispatch
        return socket.sent, sorted(link.in_flight)

    sent, in_flight = asyncio.run(scenario())
    assert sorted(t["time_msc"] for frame in sent for t in frame["ticks"]) == [T0, T0 + 1]
    assert sorted(frame["seq"] for frame in sent) == in_flight == [1, 2]
    assert all(frame["type"] == "ticks" for frame in sent)


def test_a_dead_socket_under_a_connected_link_never_starves_the_loop(tmp_path: Path) -> None:
    """A socket gone under a link still marked connected (a bridge pod deleted mid-stream):
    every send failed at once, recovery read the outbox without awaiting, and the dispatcher
    spun on its pass forever — the link's own task never ran to reconnect, and the stream
    was dead at full CPU (the e2e drill after the pod deletions). The link must leave the
    rotation and the loop go on serving others."""
    import threading

    outcome: dict[str, Any] = {}

    async def scenario() -> None:
        conn = connector(tmp_path, SimulatorTerminal())
        conn._queue = SendQueue(recovery_every_s=3600)
        for i in range(3):
            conn.outbox.put("ticks", b'{"type":"ticks","n":%d}' % i, 1)
        link = conn.links[0]
        link.ws = DeadSocket()
        link.state = LinkState.CONNECTED
        conn._queue.need_recovery()
        dispatch = asyncio.create_task(conn._dispatch_loop())
        others_ran = asyncio.Event()
        asyncio.get_running_loop().call_soon(others_ran.set)
        await until(lambda: link.state is not LinkState.CONNECTED, "the link out of rotation")
        await others_ran.wait()
        outcome["assigned"] = set(conn._assigned)
        outcome["in_flight"] = dict(link.in_flight)
        outcome["pending"] = conn.outbox.depth()
        dispatch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await dispatch

    # in a thread: a starved loop cannot be interrupted from inside it
    runner = threading.Thread(target=lambda: asyncio.run(scenario()), daemon=True)
    runner.start()
    runner.join(60)
    assert not runner.is_alive(), "the dispatcher starved the event loop"
    assert outcome == {"assigned": set(), "in_flight": {}, "pending": 3}, outcome


def test_the_send_queue_falls_back_to_recovery_when_it_cannot_hold_a_frame() -> None:
    queue = SendQueue(limit=2, recovery_every_s=3600)
    queue.recovered(complete=True)
    assert not queue.recovery_due()
    queue.offer(1, b"{}", 1)
    queue.offer(2, b"{}", 1)
    assert not queue.recovery_due()
    queue.offer(3, b"{}", 1)  # over the limit: only the outbox has it now
    assert queue.recovery_due()
    assert [frame_id for frame_id, _, _ in queue.take_fresh()] == [1, 2]
    queue.recovered(complete=False)  # a pass that did not see everything leaves it due
    assert queue.recovery_due()
    queue.recovered(complete=True)
    queue.offer(4, b"{}", 1)
    queue.drop_fresh()  # nobody connected
    assert queue.take_fresh() == []
    assert queue.recovery_due()


def test_pending_frames_are_read_while_a_page_is_being_committed(tmp_path: Path) -> None:
    """Looking for frames to resend never waits for the capture thread's transaction (its
    fsync): the reader sees what is committed, not the page still being written."""
    import threading

    box = Outbox(tmp_path / "o.db")
    done = box.put("positions", b'{"done":1}', 0)
    inside, release = threading.Event(), threading.Event()

    def hold(frame_id: int, body: bytes) -> None:
        inside.set()
        assert release.wait(60), "never released"

    writer = threading.Thread(
        target=box.put_ticks, args=("EURUSD", lambda first: b"{}", 1, Cursor(T0, 1), hold)
    )
    writer.start()
    try:
        assert inside.wait(60), "the page was never staged"
        seen: list[list[int]] = []
        reader = threading.Thread(target=lambda: seen.append([f.id for f in box.pending()]))
        reader.start()
        reader.join(60)
        assert seen == [[done]], "the reader waited for the writer's transaction"
    finally:
        release.set()
        writer.join(60)
    assert len(box.pending()) == 2


def test_a_link_moves_only_as_its_table_says() -> None:
    from aitrading.client.metatrader_connector.connector import LinkEvent, link_transition

    state = LinkState.DISCONNECTED
    for event, expected in (
        (LinkEvent.DIAL, LinkState.CONNECTING),
        (LinkEvent.UP, LinkState.CONNECTED),
        (LinkEvent.DOWN, LinkState.DISCONNECTED),
        (LinkEvent.DOWN, LinkState.DISCONNECTED),  # the dispatcher, then the link's task
        (LinkEvent.DIAL, LinkState.CONNECTING),
        (LinkEvent.DOWN, LinkState.DISCONNECTED),
    ):
        state = link_transition(state, event)
        assert state is expected, (event, state)
    for state, event in (
        (LinkState.DISCONNECTED, LinkEvent.UP),  # welcomed without a dial
        (LinkState.CONNECTED, LinkEvent.DIAL),  # a second socket for one link
        (LinkState.CONNECTING, LinkEvent.DIAL),
    ):
        with pytest.raises(ValueError, match="a link cannot go from"):
            link_transition(state, event)


def test_a_token_that_cannot_be_had_opens_no_socket_and_says_why(tmp_path: Path) -> None:
    """The token is asked for before the connection: a refused one left a socket open."""
    from aitrading.client.metatrader_connector.platform_tokens import TokenRefusedError

    async def scenario() -> tuple[int, str, str]:
        accepted: list[object] = []

        async def on_connect(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(writer)
            writer.close()

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]

        async def refused() -> str:
            raise TokenRefusedError("the gateway refused a connector token (401 unauthorized)")

        conn = connector(tmp_path, SimulatorTerminal())
        conn.options = dataclasses.replace(
            conn.options, url=f"ws://127.0.0.1:{port}/api/v1/ingest", backoff_initial_s=3600
        )
        conn._token = refused
        link = conn.links[0]
        task = asyncio.create_task(conn._link_loop(link))
        await until(lambda: bool(link.last_error), "the link's attempt failed")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        server.close()
        await server.wait_closed()
        return len(accepted), link.last_error, link.state.value

    opened, error, state = asyncio.run(scenario())
    assert opened == 0
    assert "401 unauthorized" in error
    assert state == "disconnected"


def test_a_failing_outbox_checkpoint_shows_in_status_and_in_the_cli(tmp_path: Path) -> None:
    """Nothing is lost while checkpoints fail, but the trader must see it: the connector's
    status carries the error, and `aitrading connector status` prints it."""
    import sqlite3
    import time

    from typer.testing import CliRunner

    from aitrading.cli.connector_cmd import app

    conn = connector(tmp_path, SimulatorTerminal())
    checkpointer = conn.outbox._checkpointer
    try:
        assert conn.status()["outbox_checkpoint"]["last_error"] is None
        healthy = checkpointer._db
        checkpointer._db = sqlite3.connect(":memory:", check_same_thread=False)
        checkpointer._db.close()  # every call on it now fails, as a broken file would
        checkpointer.checkpoint()
        status = conn.status()
        assert "ProgrammingError" in status["outbox_checkpoint"]["last_error"]
        (tmp_path / "status.json").write_text(json.dumps({**status, "written_at": time.time()}))
        shown = CliRunner().invoke(app, ["status", "--dir", str(tmp_path)])
        assert shown.exit_code == 0, shown.output
        assert "outbox checkpoint FAILING: ProgrammingError" in shown.output
        checkpointer._db = healthy
        checkpointer.checkpoint()
        assert conn.status()["outbox_checkpoint"]["last_error"] is None
    finally:
        conn.outbox.close()


class FakeCaptureTime:
    """A clock the capture burst sleeps on: sleeping moves it on, nothing real waits."""

    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class SlowReadTerminal(SimulatorTerminal):
    """Each read of the terminal costs 1.5 ms of the fake clock and notes when it began."""

    def __init__(self, clock_time: FakeCaptureTime) -> None:
        super().__init__()
        self.clock_time = clock_time
        self.reads_at: list[float] = []

    def ticks_from(self, symbol: str, cursor: Cursor | None, limit: int) -> list[TerminalTick]:
        self.reads_at.append(self.clock_time.now)
        self.clock_time.now += 0.0015
        return super().ticks_from(symbol, cursor, limit)


def test_a_connectors_capture_rounds_keep_the_clocks_rate_when_rounds_are_slow(
    tmp_path: Path,
) -> None:
    clock_time = FakeCaptureTime()
    terminal = SlowReadTerminal(clock_time)
    conn = Connector(
        ConnectorOptions(url="ws://127.0.0.1:9/none", symbols=("EURUSD",), page=2),
        terminal,
        Outbox(tmp_path / "o.db"),
        lambda: asyncio.sleep(0, "unused"),
        capture_clock=CaptureClock(0.002, clock_time, clock_time.sleep),
    )

    async def burst() -> int:
        total: int = conn._capture_burst(asyncio.get_running_loop(), 0.0105)
        return total

    asyncio.run(burst())
    starts = [round(t - terminal.reads_at[0], 9) for t in terminal.reads_at]
    # rounds due every 2 ms from the first; a pause between rounds would give 0, 3.5, 7 ms
    assert starts == [0.0, 0.002, 0.004, 0.006, 0.008, 0.01]
