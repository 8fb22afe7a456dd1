"""The local append-only spool: where acked ticks wait while database-service is away.

An ack promises the tick is safe. When database-service cannot take a batch, the batch is
appended here and fsynced before the ack goes out. Records are `length | crc32 | json` in
numbered segment files; a replayer sends them to database-service in order and, after each
success, persists its position (fsync, atomic rename). A crash anywhere means some batch may
be sent twice — database-service stores ticks idempotently by identity, so each tick lands
exactly once. A torn record at the end of the last segment (a crash mid-write, before its
ack) is detected by length/CRC and truncated away on open.
"""

from __future__ import annotations

import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_HEADER = struct.Struct(">II")  # length, crc32
SEGMENT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Position:
    segment: int
    offset: int


class Spool:
    """Durable FIFO of opaque batch payloads (bytes). Thread-safe; use from worker threads."""

    def __init__(self, directory: Path, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._position = self._read_position()
        segments = self._segments()
        self._write_segment = segments[-1] if segments else max(self._position.segment, 1)
        self._repair_tail(self._write_segment)
        self._handle = open(self._path(self._write_segment), "ab")  # noqa: SIM115 - kept open

    def append(self, payload: bytes) -> float:
        """Write one record and fsync it: when this returns, the record survives a crash.
        Returns the seconds the fsync took: on a disk that other writers share, its tail is
        the tail of every ack (docs/performance.md)."""
        record = _HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        with self._lock:
            if self._handle.tell() + len(record) > self._segment_bytes and self._handle.tell():
                self._handle.close()
                self._write_segment += 1
                self._handle = open(self._path(self._write_segment), "ab")  # noqa: SIM115
                _fsync_dir(self.directory)
            self._handle.write(record)
            self._handle.flush()
            started = time.perf_counter()
            os.fsync(self._handle.fileno())
            return time.perf_counter() - started

    def pending(self) -> Iterator[tuple[Position, bytes]]:
        """Unreplayed records in order, each with the position *after* it (for `commit`)."""
        with self._lock:
            start = self._position
            segments = [s for s in self._segments() if s >= start.segment]
        for segment in segments:
            offset = start.offset if segment == start.segment else 0
            with open(self._path(segment), "rb") as handle:
                handle.seek(offset)
                for payload, end in _whole_records(handle):
                    yield Position(segment, end), payload

    def commit(self, position: Position) -> None:
        """Everything before `position` is delivered: remember it and drop spent segments.

        The position's fsyncs happen outside the lock: there is one committer (the forwarder),
        and `append` — the ack path — must not wait behind two fsyncs for a lock it does not
        need. Segments before the position are never written again, so they go unlocked too.
        """
        tmp = self.directory / "position.tmp"
        tmp.write_text(f"{position.segment} {position.offset}\n")
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, self.directory / "position")
        _fsync_dir(self.directory)
        with self._lock:
            self._position = position
            spent = [s for s in self._segments() if s < position.segment]
        for segment in spent:
            self._path(segment).unlink(missing_ok=True)

    def backlog_bytes(self) -> int:
        with self._lock:
            total = 0
            for segment in self._segments():
                size = self._path(segment).stat().st_size
                if segment == self._position.segment:
                    size -= self._position.offset
                if segment >= self._position.segment:
                    total += max(size, 0)
            return total

    def close(self) -> None:
        with self._lock:
            self._handle.close()

    def _segments(self) -> list[int]:
        return sorted(int(p.stem) for p in self.directory.glob("*.seg"))

    def _path(self, segment: int) -> Path:
        return self.directory / f"{segment:010d}.seg"

    def _read_position(self) -> Position:
        try:
            segment, offset = (self.directory / "position").read_text().split()
            return Position(int(segment), int(offset))
        except (OSError, ValueError):
            return Position(1, 0)

    def _repair_tail(self, segment: int) -> None:
        """Cut a torn last record so new appends follow the last whole one."""
        path = self._path(segment)
        if not path.exists():
            return
        with open(path, "rb") as handle:
            good = max((end for _, end in _whole_records(handle)), default=0)
        if good < path.stat().st_size:
            with open(path, "rb+") as handle:
                handle.truncate(good)
                os.fsync(handle.fileno())


def _whole_records(handle: BinaryIO) -> Iterator[tuple[bytes, int]]:
    """Each whole record from the handle's position, with the offset after it; stops at a
    torn tail (a record cut by a crash mid-append: never acked, safe to ignore)."""
    while True:
        header = handle.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return
        length, crc = _HEADER.unpack(header)
        payload = handle.read(length)
        if len(payload) < length or zlib.crc32(payload) != crc:
            return
        yield payload, handle.tell()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
