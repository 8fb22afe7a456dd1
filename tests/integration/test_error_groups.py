"""ErrorDNA groups persisted in the real embedded PostgreSQL."""

from __future__ import annotations

import pytest

from aitrading.core.infrastructure.error_handler import (
    ErrorCategory,
    ErrorDNA,
    PostgresErrorGroupStore,
)
from aitrading.core.stores.postgres import PostgresStore

pytestmark = pytest.mark.integration


def _lookup(symbol: str) -> None:
    raise LookupError(f"no quote for {symbol}")


def _other_lookup(symbol: str) -> None:
    raise LookupError(f"no quote for {symbol}")


def _raised(call: object, arg: str) -> BaseException:
    try:
        call(arg)  # type: ignore[operator]
    except LookupError as exc:
        return exc
    raise AssertionError("did not raise")


async def test_occurrences_group_count_and_persist(migrated: PostgresStore) -> None:
    store = PostgresErrorGroupStore(migrated.pool)
    dna = ErrorDNA("data-bridge", store, in_app_prefixes=("tests",))

    first = await dna.capture(_raised(_lookup, "EURUSD"))
    second = await dna.capture(_raised(_lookup, "USDJPY"))
    other = await dna.capture(_raised(_other_lookup, "EURUSD"))

    assert first.fingerprint == second.fingerprint != other.fingerprint
    assert second.count == 2
    assert other.count == 1
    assert second.first_seen <= second.last_seen

    reread = await store.get(first.fingerprint)
    assert reread is not None
    assert reread.count == 2
    assert reread.category is ErrorCategory.VALIDATION or reread.category is ErrorCategory.INTERNAL
    assert "USDJPY" in reread.sample  # the latest sample is kept
    assert reread.recovery_hints
    assert await store.get("0" * 32) is None
