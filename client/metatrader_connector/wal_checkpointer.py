"""The outbox's WAL checkpoints, on a thread and a connection of their own.

SQLite checkpoints a WAL database from inside whichever commit finds the log past 1,000
pages. With the outbox's tick pages committed without an fsync (`Durability.PROCESS`), that
checkpoint is where the fsyncs happen: of the log, then of the database file, 8 to 13 ms every
1.5 s in the connector benchmark, inside a capture round and so in front of every tick of those
milliseconds. SQLite's documentation names the remedy: turn the automatic checkpoint off on the
writing connection and run checkpoints from another thread. A `PASSIVE` checkpoint never takes
the writer's lock, so captures go on while it syncs.

It also bounds what a power cut can take: a tick page is on disk at the latest one interval
after its commit (the terminal still has its ticks until then; see `outbox.py`).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

_log = logging.getLogger(__name__)
CHECKPOINT_INTERVAL_S = 1.0


class WalCheckpointer:
    """Checkpoints `path`'s WAL every `interval_s` until `stop`; a final one on stop."""

    def __init__(self, path: Path, interval_s: float = CHECKPOINT_INTERVAL_S) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, not {interval_s!r}")
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-checkpoint", daemon=True)
        self.checkpoints = 0
        self.last_error: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ends the thread after a last checkpoint; the connection is closed."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()
        else:
            self.checkpoint()
        self._db.close()

    def checkpoint(self) -> None:
        """One `PASSIVE` checkpoint: as much of the log as no reader still needs goes into the
        database file, both fsynced. A failure is kept (and logged) and tried again next time:
        the commits themselves stay in the log, which SQLite reads until a checkpoint lands."""
        try:
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:
            if self.last_error is None:
                _log.warning("outbox checkpoint failed: %s", exc)
            self.last_error = f"{type(exc).__name__}: {exc}"[:200]
            return
        self.checkpoints += 1
        self.last_error = None

    def _run(self) -> None:
        while not self._stopping.wait(self._interval_s):
            self.checkpoint()
        self.checkpoint()
