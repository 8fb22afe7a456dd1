"""A tamper-evident audit log: append-only, hash-chained, with signed checkpoints.

Each record carries the hash of the one before it and a SHA-256 over its own canonical JSON
(sequence, time, actor, action, resource, outcome, payload, previous hash), so editing,
deleting or reordering a record breaks the chain at that sequence. Appends are serialised by
a transaction-scoped advisory lock; a trigger refuses UPDATE, DELETE and TRUNCATE. Someone
with the database's superuser can still rewrite the whole chain consistently, or cut its tail
— which is what checkpoints are for: the head (sequence, hash) signed with an Ed25519 key kept
outside the database. `verify` walks the chain and every checkpoint and names the first bad
sequence.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from aitrading.core.infrastructure.background import BackgroundTask
from aitrading.core.infrastructure.central_hub import Health
from aitrading.core.security.audit_checkpoint_file import CheckpointFile, SignedCheckpoint
from aitrading.core.security.keys import key_id, write_new_key

if TYPE_CHECKING:
    import asyncpg
    import asyncpg.pool

GENESIS_HASH = "0" * 64
_LOCK_KEY = 0x61756469  # "audi": one advisory lock for all appends
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


# a connection, or one borrowed from a pool (the caller's transaction)
Connection: TypeAlias = "asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any]"


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_hash(
    seq: int,
    ts: dt.datetime,
    actor: str,
    action: str,
    resource: str,
    outcome: str,
    payload: Any,
    prev_hash: str,
) -> str:
    body = {
        "seq": seq,
        "ts": ts.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "resource": resource,
        "outcome": outcome,
        "payload": payload,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key


def write_signing_key(path: Path) -> None:
    """Create a new checkpoint key (mode 0600). Keep it outside the database's reach."""
    write_new_key(path)


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    ts: dt.datetime
    actor: str
    action: str
    resource: str
    outcome: str
    payload: Any
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    records: int
    checkpoints: int
    first_bad_seq: int | None = None
    problem: str = ""


class AuditLog:
    """The audit log in one PostgreSQL schema."""

    def __init__(self, pool: asyncpg.Pool, schema: str = "public") -> None:
        if not _IDENTIFIER.match(schema):
            raise ValueError(f"invalid schema name {schema!r}")
        self._pool = pool
        self._schema = schema
        self._log = f"{schema}.audit_log"
        self._checkpoints = f"{schema}.audit_checkpoints"

    async def append(
        self,
        actor: str,
        action: str,
        resource: str,
        outcome: str,
        payload: Any = None,
        conn: Connection | None = None,
    ) -> AuditRecord:
        """Append one record; concurrent appends from any process are serialised.

        With `conn` (inside the caller's transaction) the record commits or rolls back with
        the change it describes — an order transition and its audit record are one unit."""
        if conn is not None:
            return await self._append(conn, actor, action, resource, outcome, payload)
        async with self._pool.acquire() as own, own.transaction():
            return await self._append(own, actor, action, resource, outcome, payload)

    async def _append(
        self,
        conn: Connection,
        actor: str,
        action: str,
        resource: str,
        outcome: str,
        payload: Any,
    ) -> AuditRecord:
        body = json.loads(canonical_json(payload if payload is not None else {}))
        ts = dt.datetime.now(dt.UTC)
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        head = await conn.fetchrow(
            f"SELECT seq, hash FROM {self._log} ORDER BY seq DESC LIMIT 1"  # noqa: S608
        )
        seq = 1 if head is None else head["seq"] + 1
        prev = GENESIS_HASH if head is None else head["hash"]
        digest = record_hash(seq, ts, actor, action, resource, outcome, body, prev)
        await conn.execute(
            f"INSERT INTO {self._log} (seq, ts, actor, action, resource, outcome, payload,"  # noqa: S608
            " prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)",
            seq,
            ts,
            actor,
            action,
            resource,
            outcome,
            canonical_json(body),
            prev,
            digest,
        )
        return AuditRecord(seq, ts, actor, action, resource, outcome, body, prev, digest)

    async def checkpoint(
        self, key: Ed25519PrivateKey, external: CheckpointFile | None = None
    ) -> int | None:
        """Sign the current head; returns its sequence (None for an empty log). With
        `external`, a new checkpoint is also appended there, outside the database."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
            head = await conn.fetchrow(
                f"SELECT seq, hash FROM {self._log} ORDER BY seq DESC LIMIT 1"  # noqa: S608
            )
            if head is None:
                return None
            seq, digest = int(head["seq"]), str(head["hash"])
            signed = SignedCheckpoint(
                seq,
                digest,
                key_id(key.public_key()),
                base64.b64encode(key.sign(_checkpoint_message(seq, digest))).decode(),
            )
            await conn.execute(
                f"INSERT INTO {self._checkpoints} (seq, hash, signed_at, kid, signature)"  # noqa: S608
                " VALUES ($1, $2, now(), $3, $4) ON CONFLICT (seq) DO NOTHING",
                signed.seq,
                signed.hash,
                signed.kid,
                signed.signature,
            )
        if external is not None and seq > await asyncio.to_thread(external.last_seq):
            await asyncio.to_thread(external.append, signed)
        return seq

    async def verify(
        self, public_key: Ed25519PublicKey, external: list[SignedCheckpoint] | None = None
    ) -> VerifyReport:
        """Walk the chain and the checkpoints; report the first bad sequence.

        `external` are the checkpoints kept outside the database (`CheckpointFile`): each must
        be in the database unchanged, and the chain must match them too — so deleting the
        database's checkpoints along with a rewritten chain is detected.

        Memory stays flat however long the log: records stream through a cursor and only the
        (few) checkpoints are held.
        """
        count = 0
        expected_seq, prev = 1, GENESIS_HASH
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            rows = await conn.fetch(
                f"SELECT seq, hash, signature FROM {self._checkpoints} ORDER BY seq"  # noqa: S608
            )
            signed: dict[int, str] = {}
            for cp in rows:
                seq, digest = int(cp["seq"]), str(cp["hash"])
                try:
                    public_key.verify(
                        base64.b64decode(cp["signature"]), _checkpoint_message(seq, digest)
                    )
                except (InvalidSignature, ValueError):
                    return VerifyReport(
                        False,
                        0,
                        len(rows),
                        seq,
                        f"checkpoint at {seq} has an invalid signature (forged, or another key)",
                    )
                signed[seq] = digest
            for copy in external or []:
                try:
                    public_key.verify(
                        base64.b64decode(copy.signature), _checkpoint_message(copy.seq, copy.hash)
                    )
                except (InvalidSignature, ValueError):
                    return VerifyReport(
                        False,
                        0,
                        len(rows),
                        copy.seq,
                        f"external checkpoint at {copy.seq} is forged",
                    )
                if copy.seq not in signed:
                    return VerifyReport(
                        False,
                        0,
                        len(rows),
                        copy.seq,
                        f"checkpoint at {copy.seq} is missing from the database but present in the"
                        " external copy: checkpoints were deleted",
                    )
                if signed[copy.seq] != copy.hash:
                    return VerifyReport(
                        False,
                        0,
                        len(rows),
                        copy.seq,
                        f"checkpoint at {copy.seq} differs from the external copy",
                    )

            def bad(seq: int, problem: str) -> VerifyReport:
                return VerifyReport(False, count, len(signed), seq, problem)

            query = (
                f"SELECT seq, ts, actor, action, resource, outcome, payload::text AS payload,"  # noqa: S608
                f" prev_hash, hash FROM {self._log} ORDER BY seq"
            )
            async for row in conn.cursor(query):
                count += 1
                seq = int(row["seq"])
                if seq != expected_seq:
                    return bad(
                        expected_seq,
                        f"record {expected_seq} is missing (deleted); next present is {seq}",
                    )
                if row["prev_hash"] != prev:
                    return bad(seq, f"record {seq} does not follow record {seq - 1} (reordered)")
                digest = record_hash(
                    seq,
                    row["ts"],
                    row["actor"],
                    row["action"],
                    row["resource"],
                    row["outcome"],
                    json.loads(row["payload"]),
                    row["prev_hash"],
                )
                if digest != row["hash"]:
                    return bad(seq, f"record {seq} does not match its hash (edited)")
                if seq in signed and signed[seq] != digest:
                    return bad(seq, f"record {seq} differs from its signed checkpoint (rewritten)")
                expected_seq, prev = seq + 1, digest
        last = expected_seq - 1
        beyond = [seq for seq in signed if seq > last]
        if beyond:
            return VerifyReport(
                False,
                count,
                len(signed),
                last + 1,
                f"log truncated: signed checkpoint at {max(beyond)}, but the log ends at {last}",
            )
        return VerifyReport(True, count, len(signed))


def _checkpoint_message(seq: int, digest: str) -> bytes:
    return f"aitrading-audit-checkpoint:v1:{seq}:{digest}".encode()


class AuditCheckpointer:
    """A hub component that signs the audit head every `interval_s` (and once at stop)."""

    critical = False

    def __init__(
        self,
        log: AuditLog,
        key: Ed25519PrivateKey,
        interval_s: float,
        depends_on: tuple[str, ...] = ("postgres",),
        external: CheckpointFile | None = None,
    ) -> None:
        self.name = "audit-checkpointer"
        self.depends_on = depends_on
        self._log = log
        self._key = key
        self._interval = interval_s
        self._external = external
        self._loop = BackgroundTask("audit-checkpointer")
        self._last_error = ""
        self.last_seq: int | None = None
        self.signed = asyncio.Event()

    async def start(self) -> None:
        self._loop.start(self._run())

    async def stop(self) -> None:
        if await self._loop.stop():
            await self._sign_once()  # the head at shutdown is covered too

    async def health(self) -> Health:
        if self._last_error:
            return Health.degraded(f"last checkpoint failed: {self._last_error}")
        return Health.healthy(f"last signed sequence {self.last_seq}")

    async def _run(self) -> None:
        while True:
            await self._sign_once()
            await asyncio.sleep(self._interval)

    async def _sign_once(self) -> None:
        try:
            self.last_seq = await self._log.checkpoint(self._key, self._external)
        except Exception as exc:  # reported through health; the next round retries
            self._last_error = f"{type(exc).__name__}: {exc}"
            return
        self._last_error = ""
        self.signed.set()
