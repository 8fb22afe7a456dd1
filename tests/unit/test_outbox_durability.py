"""How far each outbox commit goes, and where the WAL's checkpoints run.

A page of ticks commits without an fsync (the terminal can give its ticks again until the
bridge acks them); a report or account frame, which the terminal cannot give again, commits
with one. The writing connection never checkpoints: a checkpoint fsyncs the log and the
database file, and inside a capture round it held up every tick of those milliseconds. The
checkpoints run on a thread of their own (`wal_checkpointer.py`)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from aitrading.client.metatrader_connector.outbox import Cursor, Outbox
from aitrading.client.metatrader_connector.wal_checkpointer import WalCheckpointer
from tests.support.waiting import until

T0 = 1_800_000_000_000


def _page(start: int) -> bytes:
    return b'{"type":"ticks","first":%d,"pad":"%s"}' % (start, b"x" * 200)


def _statements(box: Outbox) -> list[str]:
    seen: list[str] = []
    box._db.set_trace_callback(seen.append)
    return seen


def _synchronous_at_each_commit(statements: list[str]) -> list[str]:
    """The `synchronous` setting in force at each COMMIT, from the statements run."""
    current, found = "FULL", []
    for statement in statements:
        if statement.startswith("PRAGMA synchronous="):
            current = statement.split("=", 1)[1]
        elif statement == "COMMIT":
            found.append(current)
    return found


def test_tick_pages_commit_without_an_fsync_and_reports_with_one(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    try:
        statements = _statements(box)
        box.put_ticks("EURUSD", _page, 3, Cursor(T0, 1))
        box.put("execution_report", b'{"type":"execution_report"}', 1)
        box.ack_many([1])
        box.put("account_info", b'{"type":"account_info"}', 0)
        assert _synchronous_at_each_commit(statements) == ["NORMAL", "FULL", "NORMAL", "FULL"]
        assert box._db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL between commits
    finally:
        box.close()


def test_a_failed_tick_page_leaves_the_next_commit_fsynced(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    try:

        def broken(start: int) -> bytes:
            raise RuntimeError("render failed")

        with pytest.raises(RuntimeError):
            box.put_ticks("EURUSD", broken, 3, Cursor(T0, 1))
        statements = _statements(box)
        box.put("execution_report", b"{}", 1)
        assert _synchronous_at_each_commit(statements) == ["FULL"]
        assert box.depth() == 1
    finally:
        box.close()


def _wal_bytes(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_the_writer_never_checkpoints_and_the_checkpointer_keeps_the_log_bounded(
    tmp_path: Path,
) -> None:
    path = tmp_path / "o.db"
    box = Outbox(path, checkpoint_interval_s=3600)  # no checkpoint but the ones called here
    try:
        for i in range(1500):  # about 3 pages of log each: past SQLite's 1,000-page default
            box.put_ticks("EURUSD", _page, 1, Cursor(T0 + i, 1))
        grown = _wal_bytes(path)
        assert grown > 1000 * 4096 * 1.5, grown  # no commit checkpointed on its own
        box._checkpointer.checkpoint()
        assert box._checkpointer.checkpoints == 1
        assert box._checkpointer.last_error is None
        for i in range(1500, 3000):
            box.put_ticks("EURUSD", _page, 1, Cursor(T0 + i, 1))
        assert _wal_bytes(path) <= grown  # the log started over after the checkpoint
        assert box.depth() == 3000
    finally:
        box.close()
    again = Outbox(path)
    try:
        assert again.depth() == 3000
        assert again.cursors()["EURUSD"] == Cursor(T0 + 2999, 1)
    finally:
        again.close()


async def test_the_checkpointer_runs_on_its_own_thread_until_stopped(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    writer = sqlite3.connect(str(path), isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE t (x)")
    checkpointer = WalCheckpointer(path, interval_s=0.05)
    checkpointer.start()
    ran_on = checkpointer._thread
    await until(lambda: checkpointer.checkpoints >= 3, "three checkpoints on the thread")
    checkpointer.stop()
    after_stop = checkpointer.checkpoints
    assert ran_on is not threading.main_thread()
    assert ran_on.name == "outbox-checkpoint"
    assert not ran_on.is_alive()
    assert checkpointer.checkpoints == after_stop  # stopped means stopped
    writer.close()
    with pytest.raises(ValueError, match="positive"):
        WalCheckpointer(path, interval_s=0)


def test_a_failed_checkpoint_is_kept_and_tried_again(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    checkpointer = WalCheckpointer(path, interval_s=3600)
    checkpointer._db.close()  # every call on it now fails, as a broken file would
    checkpointer.checkpoint()
    assert checkpointer.last_error is not None
    assert "ProgrammingError" in checkpointer.last_error
    assert checkpointer.checkpoints == 0
    checkpointer._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    checkpointer.checkpoint()
    assert checkpointer.last_error is None
    assert checkpointer.checkpoints == 1
    checkpointer.stop()


async def test_an_outbox_checkpoints_on_its_own(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", checkpoint_interval_s=0.05)
    try:
        box.put_ticks("EURUSD", _page, 1, Cursor(T0, 1))
        await until(lambda: box._checkpointer.checkpoints >= 2, "the outbox's own checkpoints")
    finally:
        box.close()
