"""Storing one batch of acked ticks so that one refused tick never costs the others.

The sink's batches mix frames of many connections. If database-service refuses a batch as
invalid (422), the refused items — named by index in its answer — are kept as dead letters
with the reason, and the rest of the batch is stored; when the answer does not say which
items, each tick is tried on its own. Only "database-service is unavailable" propagates, and
then the caller spools or retries the whole batch: storage is idempotent by tick identity and
dead letters by fingerprint, so a retry stores nothing twice.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from prometheus_client import Counter

from aitrading.services.database_service.client import (
    DatabaseServiceClient,
    DatabaseServiceRejectedError,
    DatabaseServiceUnavailableError,
)
from aitrading.services.database_service.dead_letters import MAX_PAYLOAD

_log = logging.getLogger(__name__)
MAX_REASON = 4000


class _RawBatch(msgspec.Struct):
    ticks: list[msgspec.Raw]


class _Letter(msgspec.Struct):
    source: str
    reason: str
    payload: str


class _Letters(msgspec.Struct):
    letters: list[_Letter]


class _Source(msgspec.Struct):
    source: str = ""


_decode_batch = msgspec.json.Decoder(_RawBatch).decode
_decode_source = msgspec.json.Decoder(_Source).decode
_encode = msgspec.json.Encoder().encode


class BatchDelivery:
    def __init__(self, database: DatabaseServiceClient, dead_lettered: Counter) -> None:
        self._db = database
        self._dead_lettered = dead_lettered

    async def store(self, body: bytes) -> None:
        """Every tick of `body` is stored or dead-lettered when this returns.

        Raises `DatabaseServiceUnavailableError` when database-service cannot take it now."""
        try:
            await self._db.insert_ticks_raw(body)
            return
        except DatabaseServiceRejectedError as exc:
            refusal = exc
        try:
            items = _decode_batch(body).ticks
        except msgspec.MsgspecError:  # not even a batch: keep the whole body as one letter
            await self._bury([(body, str(refusal))])
            return
        reasons = _reasons_by_index(refusal.details, len(items))
        if not reasons:  # the answer does not say which: try each tick on its own
            await self._one_by_one(items, str(refusal))
            return
        rest = [item for index, item in enumerate(items) if index not in reasons]
        if rest:
            await self.store(_encode({"ticks": rest}))  # terminates: each round drops items
        await self._bury([(items[i], why) for i, why in sorted(reasons.items())])

    async def _one_by_one(self, items: list[msgspec.Raw], fallback: str) -> None:
        refused = []
        for item in items:
            try:
                await self._db.insert_ticks_raw(_encode({"ticks": [item]}))
            except DatabaseServiceRejectedError as exc:
                refused.append((item, _first_reason(exc.details) or str(exc) or fallback))
        await self._bury(refused)

    async def _bury(self, refused: list[tuple[Any, str]]) -> None:
        """Keep each (item as sent, reason); an item that is not a tick object keeps no source."""
        if not refused:
            return
        letters = []
        for payload, reason in refused:
            raw = bytes(payload)
            letters.append(
                _Letter(
                    source=_source(raw),
                    reason=reason[:MAX_REASON],
                    payload=raw.decode("utf-8", "replace")[:MAX_PAYLOAD],
                )
            )
        try:
            await self._db.insert_dead_letters_raw(_encode(_Letters(letters)))
        except DatabaseServiceRejectedError as exc:
            # Nowhere to keep them: keep the whole batch instead (spooled, retried, visible
            # in health) rather than drop anything or stop the sink.
            raise DatabaseServiceUnavailableError(f"dead letters refused: {exc}") from exc
        for letter in letters:
            self._dead_lettered.inc()
            _log.error(
                "dead-lettered an acked tick storage refused",
                extra={"fields": {"source": letter.source, "reason": letter.reason}},
            )


def _reasons_by_index(details: list[dict[str, Any]], count: int) -> dict[int, str]:
    reasons: dict[int, list[str]] = {}
    for detail in details:
        index = detail.get("index")
        if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < count:
            reasons.setdefault(index, []).append(
                f"{detail.get('location', '')}: {detail.get('reason', 'invalid')}"
            )
    return {index: "; ".join(why) for index, why in reasons.items()}


def _first_reason(details: list[dict[str, Any]]) -> str:
    return "; ".join(f"{d.get('location', '')}: {d.get('reason', 'invalid')}" for d in details)


def _source(item: bytes) -> str:
    try:
        return _decode_source(item).source[:256] if item else ""
    except msgspec.MsgspecError:
        return ""
