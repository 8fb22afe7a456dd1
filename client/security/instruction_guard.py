"""Signal validation: what an instruction must pass before the terminal sees it.

A valid Ed25519 signature from a known key id, this connector as its audience, not expired
(`core.market.order_instructions`), never seen before — the order id and the nonce are kept
in a small SQLite file, so a replay is refused after a restart or a reboot too — and the
connector's own limits (largest volume, allowed symbols), which hold even if the platform
were compromised.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from aitrading.core.market.order_instructions import (
    InstructionKind,
    InstructionRejectedError,
    verify_instruction,
)


@dataclass(frozen=True)
class LocalLimits:
    max_volume: float = 10.0
    symbols: frozenset[str] | None = None  # None: any symbol


@dataclass(frozen=True)
class Instruction:
    kind: InstructionKind
    order: dict[str, Any]
    nonce: str


class InstructionGuard:
    def __init__(
        self,
        path: Path,
        public_key: Callable[[str], Ed25519PublicKey | None],
        issuer: str,
        source: str,
        limits: LocalLimits = LocalLimits(),
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS seen (key TEXT PRIMARY KEY, expires REAL NOT NULL)"
        )
        self._lock = threading.Lock()
        self._public_key = public_key
        self._issuer = issuer
        self.source = source
        self._limits = limits

    def close(self) -> None:
        self._db.close()

    def admit(self, token: str) -> Instruction:
        """The instruction, recorded as seen; `InstructionRejectedError` saying why not."""
        claims = verify_instruction(token, self._public_key, self._issuer, self.source)
        kind = InstructionKind(claims["kind"])
        order: dict[str, Any] = claims["order"]
        if kind is InstructionKind.PLACE:
            if float(order.get("volume", 0)) > self._limits.max_volume:
                raise InstructionRejectedError(
                    f"volume {order.get('volume')} over this connector's limit"
                    f" {self._limits.max_volume:g}"
                )
            if self._limits.symbols is not None and order.get("symbol") not in self._limits.symbols:
                raise InstructionRejectedError(f"{order.get('symbol')} is not traded here")
        # one execution per (kind, order id), and never the same nonce twice
        keys = (f"{kind.value}:{order['id']}", f"nonce:{claims['jti']}")
        with self._lock:
            self._db.execute("DELETE FROM seen WHERE expires < ?", (time.time() - 86400,))
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if self._db.execute("SELECT 1 FROM seen WHERE key IN (?, ?)", keys).fetchone():
                    raise InstructionRejectedError("replayed: already executed here")
                for key in keys:
                    self._db.execute(
                        "INSERT INTO seen (key, expires) VALUES (?, ?)", (key, float(claims["exp"]))
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return Instruction(kind, order, str(claims["jti"]))
