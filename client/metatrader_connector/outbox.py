"""The connector's durable outbox: a frame leaves it only when data-bridge acked it.

SQLite in WAL mode: a frame put here survives a crash of the connector, a reboot of the PC
and any length of network loss; after a restart everything
still in it is sent again (data-bridge drops what it already has, by tick identity). The
capture cursor of each symbol is committed in the same transaction as the frame that carries
its ticks, so a restart resumes the terminal's tick history exactly where the outbox ends:
no tick is skipped and none is captured twice.

Ticks are numbered per symbol, from the cursor's row: the numbers a page gets depend only on
what was committed before it. So a page may be handed to the links while its commit is still
under way (`put_ticks`'s `staged`): if that commit never lands (a crash, a full disk), the
cursor did not move either, the terminal still has those ticks, and the next capture gives them
the same numbers — the same identities, which the bridge stores once. The local fsync is off
the tick's path, and "unacked means resent" still holds: resent from the terminal's history.

For the same reason a page of ticks commits without an fsync of its own
(`Durability.PROCESS`, WAL with `synchronous=NORMAL`): it survives a crash of the connector
at once, and a power cut can lose only the last pages together with the cursor that moved
past them, so the terminal gives those ticks again, numbered the same. An fsync on that commit
held up the next capture round (a 13 to 23 ms fsync left every tick of those milliseconds
waiting, then sent them in one late page: the largest part of the benchmark's p99). Frames
the terminal cannot give again — account snapshots, execution reports — commit with an fsync
(`Durability.DISK`). The WAL's checkpoints, which fsync everything committed before them,
run on a thread of their own (`wal_checkpointer.py`), at least once a second.

Frame ids are handed out by this object and never reused within a process, so an ack for a
page whose commit failed can never remove another frame.

Bounded: when `max_frames` are waiting, `put` refuses (`OutboxFullError`) and the connector
stops capturing — the terminal keeps its tick history, so capture catches up from the cursor
once acks drain the outbox. Nothing is ever dropped to make room.
"""

from __future__ import annotations

import contextlib
import enum
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aitrading.client.metatrader_connector.wal_checkpointer import (
    CHECKPOINT_INTERVAL_S,
    WalCheckpointer,
)

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
    seen_at_time INTEGER NOT NULL,
    next_sequence INTEGER
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS resting (ticket INTEGER PRIMARY KEY, body TEXT NOT NULL);
"""


class Durability(enum.Enum):
    """How far a commit has gone when it returns (the WAL's `synchronous` for that commit)."""

    DISK = "FULL"  # fsynced: survives a power cut
    PROCESS = "NORMAL"  # in the WAL, not fsynced: survives a crash of the process, not a power cut


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
    def __init__(
        self,
        path: Path,
        max_frames: int = 100_000,
        checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={Durability.DISK.value}")  # the default commit
        # no checkpoint inside a commit: they run on their own thread (wal_checkpointer.py)
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._db.executescript(_SCHEMA)
        self._first_sequence = self._migrate()
        self._last_id = self._highest_frame_id()
        self._lock = threading.Lock()
        # Reads have a connection of their own: in WAL mode a reader never waits for a
        # writer's fsync, so the event loop can look for frames to resend (or answer `status`)
        # while the capture thread commits — it waited up to a capture burst for that thread.
        self._reader = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._read_lock = threading.Lock()
        self.max_frames = max_frames
        self._checkpointer = WalCheckpointer(path, checkpoint_interval_s)
        self._checkpointer.start()

    def _migrate(self) -> int:
        """Per-symbol numbering for an outbox written when one counter numbered every symbol
        (`meta.sequence`): each symbol goes on above the last number that counter gave, so no
        tick identity is ever given twice. Returns where a symbol seen for the first time
        starts — a constant, so a page whose commit was lost is numbered the same again."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(cursors)")}
        if "next_sequence" not in columns:
            self._db.execute("ALTER TABLE cursors ADD COLUMN next_sequence INTEGER")
        row = self._db.execute("SELECT value FROM meta WHERE key = 'sequence'").fetchone()
        first = (int(row[0]) if row else 0) + 1
        self._db.execute(
            "UPDATE cursors SET next_sequence = ? WHERE next_sequence IS NULL", (first,)
        )
        return first

    def _highest_frame_id(self) -> int:
        """The highest frame id this file ever gave out (AUTOINCREMENT keeps it after deletes)."""
        row = self._db.execute(
            "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'frames'), 0),"
            " coalesce((SELECT max(id) FROM frames), 0))"
        ).fetchone()
        return int(row[0])

    def close(self) -> None:
        self._checkpointer.stop()
        self._reader.close()
        self._db.close()

    def checkpoint_state(self) -> dict[str, Any]:
        """The checkpoints so far and the last one's error, if it failed: for `status`. A
        failing checkpoint loses nothing, but the log grows and tick pages are not on disk
        until one lands, so the trader should see it."""
        return {
            "checkpoints": self._checkpointer.checkpoints,
            "last_error": self._checkpointer.last_error,
        }

    @contextlib.contextmanager
    def _transaction(self, durability: Durability = Durability.DISK) -> Iterator[None]:
        """Under the lock: one write transaction, committed as far as `durability` says when
        the block ends, rolled back (and the error raised) when it fails."""
        if durability is not Durability.DISK:
            self._db.execute(f"PRAGMA synchronous={durability.value}")
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        finally:
            if durability is not Durability.DISK:
                self._db.execute(f"PRAGMA synchronous={Durability.DISK.value}")

    def put(self, kind: str, body: bytes, items: int = 1) -> int:
        """Store a frame other than ticks durably; its id."""
        with self._lock:
            frame_id = self._new_frame_id()
            with self._transaction():
                self._insert(frame_id, kind, body, items)
            return frame_id

    def put_ticks(
        self,
        symbol: str,
        render: Callable[[int], bytes],
        items: int,
        cursor: Cursor,
        staged: Callable[[int, bytes], None] | None = None,
    ) -> int:
        """One page of `symbol`'s ticks: `render(first)` numbers them from the symbol's next
        sequence number; the frame and the advanced cursor commit together, without an fsync
        (`Durability.PROCESS`). `staged(frame_id, body)` runs once both are written and before
        that commit — the page may go out before it lands (see the module's docstring for why
        both are safe). If the commit fails, nothing of the page stays and the error is raised."""
        with self._lock:
            frame_id = self._new_frame_id()
            with self._transaction(Durability.PROCESS):
                first = self._next_sequence(symbol)
                body = render(first)
                self._insert(frame_id, "ticks", body, items)
                self._db.execute(
                    "INSERT INTO cursors (symbol, time_msc, seen_at_time, next_sequence)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (symbol) DO UPDATE SET"
                    " time_msc = excluded.time_msc, seen_at_time = excluded.seen_at_time,"
                    " next_sequence = excluded.next_sequence",
                    (symbol, cursor.time_msc, cursor.seen_at_time, first + items),
                )
                if staged is not None:
                    staged(frame_id, body)
            return frame_id

    def _new_frame_id(self) -> int:
        """Under the lock: an id no frame of this process had, even one whose commit failed."""
        self._last_id += 1
        return self._last_id

    def _insert(self, frame_id: int, kind: str, body: bytes, items: int) -> None:
        """Inside a transaction, with room checked first: the outbox is bounded."""
        (waiting,) = self._db.execute("SELECT count(*) FROM frames").fetchone()
        if waiting >= self.max_frames:
            raise OutboxFullError(f"{self.max_frames} frames await their ack")
        self._db.execute(
            "INSERT INTO frames (id, kind, body, items) VALUES (?, ?, ?, ?)",
            (frame_id, kind, body, items),
        )

    def _next_sequence(self, symbol: str) -> int:
        """Inside a transaction: the number `symbol`'s next captured tick gets."""
        row = self._db.execute(
            "SELECT next_sequence FROM cursors WHERE symbol = ?", (symbol,)
        ).fetchone()
        return int(row[0]) if row else self._first_sequence

    def ack(self, frame_id: int) -> None:
        """Data-bridge has it (in its journal): forget it."""
        self.ack_many([frame_id])

    def ack_many(self, frame_ids: list[int]) -> None:
        """Forget several acked frames in one transaction.

        Losing this to a crash only means the frames go out again, and the bridge counts them
        as duplicates — so acks are forgotten in batches and without an fsync of their own
        (`Durability.PROCESS`; the next fsynced commit or checkpoint syncs it too)."""
        if not frame_ids:
            return
        with self._lock, self._transaction(Durability.PROCESS):
            self._db.executemany("DELETE FROM frames WHERE id = ?", [(i,) for i in frame_ids])

    def pending(self, after: int = 0, limit: int = 1000) -> list[PendingFrame]:
        """Committed frames after id `after`, oldest first; never waits for a commit."""
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT id, kind, body, items FROM frames WHERE id > ? ORDER BY id LIMIT ?",
                (after, limit),
            ).fetchall()
        return [PendingFrame(r[0], r[1], bytes(r[2]), r[3]) for r in rows]

    def depth(self) -> int:
        """Committed frames awaiting their ack."""
        with self._read_lock:
            row = self._reader.execute("SELECT count(*) FROM frames").fetchone()
        return int(row[0])

    def cursors(self) -> dict[str, Cursor]:
        """Where capture of each symbol stands, as committed."""
        with self._read_lock:
            rows = self._reader.execute("SELECT symbol, time_msc, seen_at_time FROM cursors")
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
