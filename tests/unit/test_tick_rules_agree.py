"""data-bridge acks a tick only if database-service will store it: both apply one set of rules.

Every tick of a corpus of edge cases and of a seeded random sample is judged by the bridge's
check (clock skew aside, which is the bridge's own extra policy) and by database-service's
batch decoding (the one tick model, from JSON as it arrives); the two verdicts must be the
same for every tick.
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest

from aitrading.core.market.ticks import INT64_MAX, MAX_TIME_MSC, MIN_TIME_MSC, UINT32_MAX
from aitrading.core.market.ticks import Tick as WireTick
from aitrading.services.common.http import ApiError
from aitrading.services.data_bridge.protocol import check_tick
from aitrading.services.database_service.tick_batches import decode_batch

BASE: dict[str, Any] = {
    "symbol": "EURUSD",
    "time_msc": 1_700_000_000_000,
    "sequence": 1,
    "bid": 1.1,
    "ask": 1.2,
    "last": 0.0,
    "volume": 0,
    "volume_real": 0.0,
    "flags": 6,
}
EDGES: dict[str, list[Any]] = {
    "symbol": [
        "EURUSD",
        "EURUSD\n",
        "\nEURUSD",
        "EUR\x00",
        "EUR\tUSD",
        "É",
        "a" * 32,
        "a" * 33,
        "",
        "-EUR",
        "XAU.#_-1",
        "EUR\u2028",
        "EURUSD\r",
    ],
    "time_msc": [
        MIN_TIME_MSC - 1,
        MIN_TIME_MSC,
        MAX_TIME_MSC,
        MAX_TIME_MSC + 1,
        0,
        -1,
        2**63,
        2**64,
    ],
    "sequence": [-1, 0, INT64_MAX, INT64_MAX + 1, 2**64 - 1],
    "bid": [0.0, -0.0, 5e-324, 1e308, math.inf, math.nan, -1.0],
    "ask": [1.0, 1e308, math.inf, 0.5],
    "last": [-0.0, -1e-9, 1e308, math.nan],
    "volume": [-1, 0, INT64_MAX, INT64_MAX + 1, 2**64 - 1],
    "volume_real": [-1.0, 0.0, math.inf, 1e300],
    "flags": [-1, 0, 2, 126, 128, UINT32_MAX, UINT32_MAX + 1, 2**40],
}
SOURCES = ["u1:term", "u" * 64, "u" * 65, "u1:term\n", "u1/term", ":u1", "ü1"]


def _verdicts(fields: dict[str, Any], source: str) -> tuple[bool, bool]:
    wire = WireTick(**fields)
    bridge_ok = check_tick(wire, source, max_skew_ms=10**15, now_ms=fields["time_msc"]) is None
    try:
        decode_batch(json.dumps({"ticks": [{"source": source, **fields}]}).encode())
        storage_ok = True
    except ApiError:
        storage_ok = False
    return bridge_ok, storage_ok


def _cases() -> list[tuple[dict[str, Any], str]]:
    cases = [
        ({**BASE, field: value}, "u1:term") for field, values in EDGES.items() for value in values
    ]
    cases += [(dict(BASE), source) for source in SOURCES]
    rng = random.Random(20261125)
    for _ in range(3000):
        fields = dict(BASE)
        for field in rng.sample(sorted(EDGES), rng.randint(1, 4)):
            fields[field] = rng.choice(EDGES[field])
        cases.append((fields, rng.choice(SOURCES)))
    return cases


def test_bridge_and_storage_agree_on_every_tick() -> None:
    disagreements = []
    for fields, source in _cases():
        bridge_ok, storage_ok = _verdicts(fields, source)
        if bridge_ok != storage_ok:
            disagreements.append((fields, source, bridge_ok, storage_ok))
    assert not disagreements, disagreements[:5]


@pytest.mark.parametrize("field", sorted(EDGES))
def test_each_bound_refuses_something(field: str) -> None:
    """The corpus really reaches each rule: every field has a value both sides refuse."""
    assert any(
        _verdicts({**BASE, field: value}, "u1:term") == (False, False) for value in EDGES[field]
    )


def test_a_tick_with_its_source_keeps_every_field() -> None:
    """`sourced` relies on `Tick`'s fields being `SourcedTick`'s after the source."""
    from msgspec.structs import asdict

    from aitrading.core.market.ticks import SourcedTick, sourced

    assert SourcedTick.__struct_fields__[1:] == WireTick.__struct_fields__
    tick = WireTick(**{**BASE, "last": 1.15, "volume": 3, "volume_real": 0.5})
    assert asdict(sourced(tick, "u1:term")) == {"source": "u1:term", **asdict(tick)}


WRONG_TYPES: list[tuple[str, Any]] = [
    ("symbol", 5),
    ("symbol", None),
    ("time_msc", True),
    ("time_msc", 1_700_000_000_000.0),
    ("time_msc", "1700000000000"),
    ("sequence", False),
    ("sequence", 1.5),
    ("bid", True),
    ("bid", "1.1"),
    ("ask", None),
    ("volume", 1.0),
    ("volume_real", False),
    ("flags", True),
    ("flags", [6]),
]


@pytest.mark.parametrize(("field", "value"), WRONG_TYPES)
def test_a_value_of_the_wrong_type_is_refused_by_both_decoders(field: str, value: Any) -> None:
    """Both sides check a decoded tick's values only (`tick_problem`): that is safe because
    their decoders refuse every value of the wrong type first. This pins that guarantee."""
    from aitrading.services.data_bridge.protocol import ProtocolError, decode

    tick = {**BASE, field: value}
    with pytest.raises(ProtocolError):
        decode(json.dumps({"type": "tick", "seq": 1, "tick": tick}))
    with pytest.raises(ApiError):
        decode_batch(json.dumps({"ticks": [{"source": "u1:term", **tick}]}).encode())
