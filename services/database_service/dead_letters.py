"""Dead letters: acked ticks that storage refused, kept with the reason instead of dropped.

data-bridge validates every tick with the rules storage applies before it acks, so nothing
should ever land here; if something does (a rule that changed between versions, a storage
limit nobody knew), it is recorded with database-service's reason, counted, and listed by
`aitrading ticks dead-letter list` — and the rest of its batch is stored normally. A letter's
fingerprint is a hash of its payload, so a replayed letter is kept once.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from pydantic import Field

from aitrading.core.stores.clickhouse import ClickHouseStore
from aitrading.services.database_service.models import _Stored

MAX_PAYLOAD = 64 * 1024


class DeadLetterIn(_Stored):
    source: str = Field(max_length=256, description="who sent it (as data-bridge knows it)")
    reason: str = Field(min_length=1, max_length=4000, description="why storage refused it")
    payload: str = Field(max_length=MAX_PAYLOAD, description="the item as it was sent (JSON)")


class DeadLetters(_Stored):
    letters: list[DeadLetterIn] = Field(min_length=1, max_length=10_000)


class DeadLetter(DeadLetterIn):
    received_at: dt.datetime
    fingerprint: str


class DeadLetterRepository:
    def __init__(self, store: ClickHouseStore) -> None:
        self._store = store

    async def add(self, letters: list[DeadLetterIn]) -> int:
        rows = [
            [letter.source, letter.reason, letter.payload, _fingerprint(letter)]
            for letter in letters
        ]
        await self._store.run(
            self._store.client.insert,
            "tick_dead_letters",
            rows,
            column_names=["source", "reason", "payload", "fingerprint"],
        )
        return len(rows)

    async def latest(self, limit: int) -> list[DeadLetter]:
        rows = await self._store.query_rows(
            "SELECT received_at, source, reason, payload, fingerprint FROM tick_dead_letters FINAL"
            " ORDER BY received_at DESC LIMIT %(limit)s",
            {"limit": limit},
        )
        return [
            DeadLetter(
                received_at=r[0] if r[0].tzinfo else r[0].replace(tzinfo=dt.UTC),
                source=r[1],
                reason=r[2],
                payload=r[3],
                fingerprint=r[4].decode() if isinstance(r[4], bytes) else str(r[4]),
            )
            for r in rows
        ]


def _fingerprint(letter: DeadLetterIn) -> str:
    return hashlib.blake2b(
        f"{letter.source}\0{letter.payload}".encode(), digest_size=16
    ).hexdigest()
