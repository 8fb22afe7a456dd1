"""Signed audit checkpoints kept outside PostgreSQL as well.

Someone who controls the database can delete the checkpoints table's rows together with a
consistently rewritten chain, and `verify` against the database alone would then report an
intact log. A second copy of every checkpoint, on storage the database cannot reach (a file
on its own volume, which the operator mounts), closes that: `verify` compares both, so a
checkpoint missing from — or different in — the database is reported.

One JSON object per line, appended and fsynced; a torn last line (a crash mid-write) is
ignored on reading.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class SignedCheckpoint:
    seq: int
    hash: str
    kid: str
    signature: str  # base64 of the Ed25519 signature


class CheckpointFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._last_seq: int | None = None  # read once, then kept up to date by `append`

    def read(self) -> list[SignedCheckpoint]:
        if not self.path.exists():
            return []
        found = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                item = json.loads(line)
                found.append(
                    SignedCheckpoint(
                        int(item["seq"]),
                        str(item["hash"]),
                        str(item["kid"]),
                        str(item["signature"]),
                    )
                )
            except (ValueError, KeyError, TypeError):
                continue  # a torn line from a crash mid-write
        return found

    def last_seq(self) -> int:
        if self._last_seq is None:
            self._last_seq = max((c.seq for c in self.read()), default=0)
        return self._last_seq

    def append(self, checkpoint: SignedCheckpoint) -> None:
        """Write one line and fsync it (mode 0600; the directory is created if needed)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (json.dumps(asdict(checkpoint), sort_keys=True) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self._last_seq = max(self.last_seq(), checkpoint.seq)
