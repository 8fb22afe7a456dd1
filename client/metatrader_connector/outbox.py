"""The connector's durable outbox: a frame leaves it only when data-bridge acked it.

SQLite in WAL mode with `synchronous=FULL`: a frame put here survives a crash of the
connector, a reboot of the PC and any length of network loss; after a restart everything
still in it is sent again (data-bridge drops what it already has, by tick identity). The
capture cursor of each symbol is committed in the same transaction as the frame that carries
its ticks, so a restart resumes the terminal's tick history exactly where the outbox ends:
no tick is skipped and none is captured twice.

Bounded: when `max_frames` are waiting, `put` refuses (`OutboxFullError`) and the connector
stops capturing — the terminal keeps its tick history, so capture catches up from the cursor
once acks drain the outbox. Nothing is ever dropped to make room.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS frames (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    body BLOB NOT NULL,
    items INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (
    symbol TEXT PRIMARY KEY,
    time_msc INTEGER NOT NULL,
    seen_at_time INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS resting (ticket INTEGER PRIMARY KEY, body TEXT NOT NULL);
"""


class OutboxFullError(Exception):
    """`max_frames` frames await their ack: stop capturing until they drain."""


@dataclass(frozen=True)
class PendingFrame:
    id: int
    kind: str
    body: bytes  # the frame's JSON without `seq` (each connection numbers its own)
    items: int


@dataclass(frozen=True)
class Cursor:
    """Where capture of one symbol stands: the last `time_msc` captured, and how many ticks
    with exactly that `time_msc` were captured (MT5 can stamp several ticks the same ms)."""

    time_msc: int
    seen_at_time: int


class Outbox:
    def __init__(self, path: Path, max_frames: int = 100_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # committed = on disk
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self.max_frames = max_frames

    def close(self) -> None:
        self._db.close()

    def put(
        self,
        kind: str,
        body: bytes,
        items: int = 1,
        cursors: dict[str, Cursor] | None = None,
    ) -> int:
        """Store a frame (and the capture cursors it advances) durably; its id."""
        return self._store(kind, lambda _: body, items, cursors, numbered=False)

    def put_numbered(
        self,
        kind: str,
        render: Callable[[int], bytes],
        items: int,
        cursors: dict[str, Cursor] | None = None,
    ) -> int:
        """Reserve `items` tick sequence numbers, then store `render(first)` with the cursors
        it advances — one transaction, one fsync. A restart never reuses a sequence number,
        so a tick keeps its identity (source, symbol, time_msc, sequence) only if it was
        stored with it, which is why ticks are numbered as they enter the outbox."""
        return self._store(kind, render, items, cursors, numbered=True)

    def _store(
        self,
        kind: str,
        render: Callable[[int], bytes],
        items: int,
        cursors: dict[str, Cursor] | None,
        numbered: bool,
    ) -> int:
        with self._lock:
            if self.depth() >= self.max_frames:
                raise OutboxFullError(f"{self.max_frames} frames await their ack")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                first = self._reserve(items) if numbered else 0
                cursor = self._db.execute(
                    "INSERT INTO frames (kind, body, items) VALUES (?, ?, ?)",
                    (kind, render(first), items),
                )
                for symbol, at in (cursors or {}).items():
                    self._db.execute(
                        "INSERT INTO cursors (symbol, time_msc, seen_at_time) VALUES (?, ?, ?)"
                        " ON CONFLICT (symbol) DO UPDATE SET time_msc = excluded.time_msc,"
                        " seen_at_time = excluded.seen_at_time",
                        (symbol, at.time_msc, at.seen_at_time),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            frame_id = cursor.lastrowid
            assert frame_id is not None
            return frame_id

    def _reserve(self, count: int) -> int:
        """Inside a transaction: the first of `count` fresh sequence numbers."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'sequence'").fetchone()
        first = (int(row[0]) if row else 0) + 1
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES ('sequence', ?) ON CONFLICT (key)"
            " DO UPDATE SET value = excluded.value",
            (first + count - 1,),
        )
        return first

    def ack(self, frame_id: int) -> None:
        """Data-bridge has it (in its journal): forget it."""
        self.ack_many([frame_id])

    def ack_many(self, frame_ids: list[int]) -> None:
        """Forget several acked frames in one transaction (one fsync).

        Losing this to a crash only means the frames go out again, and the bridge counts them
        as duplicates — so acks are forgotten in batches and without an fsync of their own (WAL
        `synchronous=NORMAL` for this commit; the next frame's FULL commit syncs it too). Short
        enough for the event loop: in a thread it held the connection's lock through an fsync
        while the loop waited for it to put the next frame."""
        if not frame_ids:
            return
        with self._lock:
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: this commit does not fsync
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("DELETE FROM frames WHERE id = ?", [(i,) for i in frame_ids])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            finally:
                self._db.execute("PRAGMA synchronous=FULL")

    def pending(self, after: int = 0, limit: int = 1000) -> list[PendingFrame]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kind, body, items FROM frames WHERE id > ? ORDER BY id LIMIT ?",
                (after, limit),
            ).fetchall()
        return [PendingFrame(r[0], r[1], bytes(r[2]), r[3]) for r in rows]

    def depth(self) -> int:
        row = self._db.execute("SELECT count(*) FROM frames").fetchone()
        return int(row[0])

    def cursors(self) -> dict[str, Cursor]:
        with self._lock:
            rows = self._db.execute("SELECT symbol, time_msc, seen_at_time FROM cursors")
            return {r[0]: Cursor(r[1], r[2]) for r in rows.fetchall()}

    def remember_resting(self, ticket: int, order: dict[str, object]) -> None:
        """An order now resting at the terminal, watched until it ends (survives restarts)."""
        import json

        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO resting (ticket, body) VALUES (?, ?)",
                (ticket, json.dumps(order)),
            )

    def forget_resting(self, ticket: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM resting WHERE ticket = ?", (ticket,))

    def resting(self) -> dict[int, dict[str, object]]:
        import json

        with self._lock:
            rows = self._db.execute("SELECT ticket, body FROM resting").fetchall()
        return {int(r[0]): json.loads(r[1]) for r in rows}
