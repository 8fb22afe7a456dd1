"""BatchDelivery's decisions, with database-service replaced by a recording stand-in (the
real service is exercised in tests/integration/test_ack_safety.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter

from aitrading.services.data_bridge.delivery import BatchDelivery
from aitrading.services.database_service.client import (
    DatabaseServiceRejectedError,
    DatabaseServiceUnavailableError,
)


class Recorder:
    def __init__(self, refuse_letters: bool = False, name_items: bool = True) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.letters: list[dict[str, Any]] = []
        self._refuse_letters = refuse_letters
        self._name_items = name_items

    async def insert_ticks_raw(self, body: bytes) -> None:
        ticks = json.loads(body)["ticks"]
        bad = [i for i, t in enumerate(ticks) if t["symbol"] == "BAD"]
        if bad:
            details = [{"index": i, "location": "symbol", "reason": "no"} for i in bad]
            raise DatabaseServiceRejectedError("HTTP 422", details if self._name_items else [])
        self.batches.append(ticks)

    async def insert_dead_letters_raw(self, body: bytes) -> int:
        if self._refuse_letters:
            raise DatabaseServiceRejectedError("HTTP 422")
        self.letters += json.loads(body)["letters"]
        return 1


def _body(*symbols: str) -> bytes:
    return json.dumps({"ticks": [{"symbol": s, "source": "src"} for s in symbols]}).encode()


def _delivery(db: Recorder) -> BatchDelivery:
    return BatchDelivery(db, Counter("x", "x", registry=CollectorRegistry()))  # type: ignore[arg-type]


@pytest.mark.parametrize("name_items", [True, False])
async def test_refused_items_are_dead_lettered_and_the_rest_stored(name_items: bool) -> None:
    db = Recorder(name_items=name_items)
    await _delivery(db).store(_body("A", "BAD", "B"))
    assert [t["symbol"] for batch in db.batches for t in batch] == ["A", "B"]
    assert [json.loads(letter["payload"])["symbol"] for letter in db.letters] == ["BAD"]
    assert db.letters[0]["source"] == "src"


async def test_when_dead_letters_are_refused_too_the_batch_is_kept_for_later() -> None:
    db = Recorder(refuse_letters=True)
    with pytest.raises(DatabaseServiceUnavailableError):
        await _delivery(db).store(_body("A", "BAD"))
