"""Structured logging routed by level to sinks, without ever blocking the caller.

A `logging.Handler` turns each stdlib record into a `LogRecord` (service, trace id and request
id from the request's context, secrets redacted) and puts it on a bounded queue; a background
thread drains the queue in batches and hands each batch to the sinks its levels route to.

Under overload the queue sheds DEBUG, then INFO, then WARNING — counted per level — but
ERROR and CRITICAL are never dropped: when the queue is full they are appended to a local
spill file (fsync), which the writer replays into the sinks once it catches up.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Protocol

from aitrading.core.logging.records import LEVEL_RANK, LEVELS, LogRecord, decode_many, encode
from aitrading.core.logging.records import fields_json as _fields_json
from aitrading.core.security.secure_config_manager import (
    STANDARD_RECORD_ATTRS,
    RedactingFilter,
)

NEVER_DROPPED = frozenset({"ERROR", "CRITICAL"})


class Sink(Protocol):
    name: str

    def write(self, records: list[LogRecord]) -> None: ...


class StdoutSink:
    """JSON lines on a stream (stdout in a pod, for `kubectl logs`)."""

    name = "stdout"

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream or sys.stdout

    def write(self, records: list[LogRecord]) -> None:
        self._stream.write("".join(encode(r).decode() + "\n" for r in records))
        self._stream.flush()


def default_routes(sinks: dict[str, Sink]) -> dict[str, list[Sink]]:
    """DEBUG and INFO to hot and stdout; WARNING and above also straight to warm."""
    routes: dict[str, list[Sink]] = {}
    for level in LEVELS:
        chosen = [sinks[n] for n in ("hot", "stdout") if n in sinks]
        if LEVEL_RANK[level] >= LEVEL_RANK["WARNING"] and "warm" in sinks:
            chosen.append(sinks["warm"])
        routes[level] = chosen
    return routes


class LogRouter:
    def __init__(
        self,
        service: str,
        routes: dict[str, list[Sink]],
        spill_dir: Path,
        capacity: int = 50_000,
        batch_size: int = 2_000,
        flush_interval_s: float = 0.05,
        context: Callable[[], tuple[str, str]] | None = None,
    ) -> None:
        self.service = service
        self._routes = routes
        self._capacity = capacity
        self._batch_size = batch_size
        self._interval = flush_interval_s
        self._context = context or (lambda: ("", ""))
        self._queues: dict[str, deque[LogRecord]] = {level: deque() for level in LEVELS}
        self._size = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._spill_path = spill_dir / f"{service}-spill.jsonl"
        spill_dir.mkdir(parents=True, exist_ok=True)
        self._spill: IO[bytes] | None = None
        self.dropped: Counter[str] = Counter()
        self.written: Counter[str] = Counter()
        self.spilled = 0
        self.sink_errors: Counter[str] = Counter()

    # -- producer side ------------------------------------------------------------------
    def submit(self, record: LogRecord) -> None:
        """Never blocks on a sink. Sheds low levels under overload; spills high ones."""
        with self._lock:
            if self._size >= self._capacity and not self._shed_one_below(record.level):
                if record.level in NEVER_DROPPED:
                    self._spill_record(record)
                else:
                    self.dropped[record.level] += 1
                return
            self._queues[record.level].append(record)
            self._size += 1
            # is_set is a read; set takes the event's lock and notifies, on every record once
            # the writer is behind
            if self._size >= self._batch_size and not self._wake.is_set():
                self._wake.set()

    def _shed_one_below(self, level: str) -> bool:
        """Make room by dropping the oldest queued record of a lower level (O(1))."""
        for victim in LEVELS[: LEVEL_RANK[level]]:
            if victim in NEVER_DROPPED:
                break  # an ERROR is never evicted, not even for a CRITICAL
            queue = self._queues[victim]
            if queue:
                queue.popleft()
                self._size -= 1
                self.dropped[victim] += 1
                return True
        return False

    def _spill_record(self, record: LogRecord) -> None:
        if self._spill is None:
            self._spill = open(self._spill_path, "ab")  # noqa: SIM115 - kept open
        self._spill.write(encode(record) + b"\n")
        self._spill.flush()
        os.fsync(self._spill.fileno())
        self.spilled += 1

    def handler(self, level: int = logging.DEBUG) -> logging.Handler:
        """A stdlib handler feeding this router (with the redaction filter attached)."""
        return _RouterHandler(self, level)

    def record_from(self, source: logging.LogRecord) -> LogRecord:
        trace_id, request_id = self._context()
        extras = {k: v for k, v in vars(source).items() if k not in STANDARD_RECORD_ATTRS}
        message = source.getMessage()
        if source.exc_text:
            message = f"{message}\n{source.exc_text}"
        return LogRecord(
            ts_ms=int(source.created * 1000),
            level=source.levelname if source.levelname in LEVEL_RANK else "INFO",
            service=self.service,
            message=message,
            logger=source.name,
            trace_id=trace_id,
            request_id=request_id,
            fields=_fields_json({k: _plain(v) for k, v in extras.items()}),
        )

    # -- writer side ----------------------------------------------------------------------
    def start(self) -> None:
        self._replay_spill()
        self._thread = threading.Thread(
            target=self._run, name=f"log-router:{self.service}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.flush()
        if self._spill is not None:
            self._spill.close()

    def flush(self) -> None:
        """Deliver everything queued now, most severe first, in batches."""
        while True:
            batch: list[LogRecord] = []
            with self._lock:
                for level in reversed(LEVELS):
                    queue = self._queues[level]
                    while queue and len(batch) < self._batch_size:
                        batch.append(queue.popleft())
                self._size -= len(batch)
            if not batch:
                return
            self._deliver(batch)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            self.flush()
            if self.spilled and self._spill is not None:
                self._replay_spill()

    def _deliver(self, batch: list[LogRecord]) -> None:
        by_sink: dict[int, tuple[Sink, list[LogRecord]]] = {}
        for record in batch:
            for sink in self._routes.get(record.level, ()):
                by_sink.setdefault(id(sink), (sink, []))[1].append(record)
        failed_high: list[LogRecord] = []
        for sink, records in by_sink.values():
            try:
                sink.write(records)
            except Exception:
                self.sink_errors[sink.name] += 1
                failed_high += [r for r in records if r.level in NEVER_DROPPED]
        for record in batch:
            self.written[record.level] += 1
        if failed_high:  # errors are never lost: keep them for the next round
            with self._lock:
                for record in {r.record_id: r for r in failed_high}.values():
                    self._spill_record(record)

    def _replay_spill(self) -> None:
        """Feed spilled ERROR/CRITICAL records to the sinks, then start a new spill file."""
        with self._lock:
            if self._spill is not None:
                self._spill.close()
                self._spill = None
            if not self._spill_path.exists():
                return
            replaying = self._spill_path.with_suffix(".replaying")
            os.replace(self._spill_path, replaying)
            self.spilled = 0
        lines = [line for line in replaying.read_bytes().splitlines() if line.strip()]
        if lines:
            records = decode_many(b"[" + b",".join(lines) + b"]")
            for chunk_start in range(0, len(records), self._batch_size):
                self._deliver(records[chunk_start : chunk_start + self._batch_size])
        replaying.unlink(missing_ok=True)


class _RouterHandler(logging.Handler):
    def __init__(self, router: LogRouter, level: int) -> None:
        super().__init__(level)
        self.router = router
        self.addFilter(RedactingFilter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.router.submit(self.router.record_from(record))
        except Exception:  # logging must never take the caller down
            self.handleError(record)


def _plain(value: object) -> object:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def install(router: LogRouter, level: str = "INFO", loggers: Iterable[str] = ("",)) -> None:
    """Route the given loggers (default: root) through `router`."""
    handler = router.handler()
    for name in loggers:
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(level)
