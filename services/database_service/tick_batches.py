"""database-service's side of the one tick model (`core.market.ticks`): a batch decoded into
`SourcedTick`s and checked with `tick_problem` — the rules data-bridge applied before it
acked — and the OpenAPI description of both, derived from that model and those rules.

A batch with any bad tick is refused whole (422), every bad tick listed with its index:
each tick is decoded on its own, so a missing field in one does not hide the others.
"""

from __future__ import annotations

from typing import Any

import msgspec

from aitrading.core.market.ticks import (
    INT64_MAX,
    MAX_TIME_MSC,
    MIN_TIME_MSC,
    SOURCE_PATTERN,
    SYMBOL_PATTERN,
    UINT32_MAX,
    Refusal,
    SourcedTick,
    tick_problem,
)
from aitrading.services.common.http import ApiError

MAX_BATCH = 50_000


class _RawBatch(msgspec.Struct, forbid_unknown_fields=True):
    ticks: list[msgspec.Raw]


class _TypedBatch(msgspec.Struct, forbid_unknown_fields=True):
    ticks: list[SourcedTick]


_typed = msgspec.json.Decoder(_TypedBatch)
_batch = msgspec.json.Decoder(_RawBatch)
_tick = msgspec.json.Decoder(SourcedTick)
_encode = msgspec.json.Encoder().encode


def decode_batch(body: bytes) -> list[SourcedTick]:
    """The batch's ticks, or ApiError 422 naming every bad one.

    A well-formed batch is decoded in one call; only one that fails is decoded again tick by
    tick, so that every bad tick is named, not just the first."""
    try:
        typed = _typed.decode(body).ticks
    except msgspec.DecodeError:
        return _decode_each(body)  # raises, naming every bad tick
    _check_size(len(typed))
    details = [
        _bad(index, refused)
        for index, tick in enumerate(typed)
        if (refused := tick_problem(tick, tick.source)) is not None
    ]
    if details:
        raise _refused(f"{len(details)} invalid tick(s)", details)
    return typed


def _check_size(count: int) -> None:
    if not 1 <= count <= MAX_BATCH:
        reason = f"a batch holds 1 to {MAX_BATCH} ticks, not {count}"
        raise _refused(reason, [{"location": "ticks", "field": "ticks", "reason": reason}])


def _bad(index: int, refused: Refusal) -> dict[str, Any]:
    reason = f"{refused.problem.value}: {refused.message}"
    return {"location": f"ticks.{index}", "index": index, "reason": reason}


def _decode_each(body: bytes) -> list[SourcedTick]:
    try:
        raw = _batch.decode(body)
    except msgspec.DecodeError as exc:
        details: list[dict[str, Any]] = [{"location": "body", "reason": str(exc)}]
        raise _refused("the body is not a tick batch", details) from None
    _check_size(len(raw.ticks))
    ticks: list[SourcedTick] = []
    details = []
    for index, item in enumerate(raw.ticks):
        try:
            tick = _tick.decode(item)
        except msgspec.DecodeError as exc:
            details.append({"location": f"ticks.{index}", "index": index, "reason": str(exc)})
            continue
        refused = tick_problem(tick, tick.source)
        if refused is not None:
            details.append(_bad(index, refused))
            continue
        ticks.append(tick)
    if details:
        raise _refused(f"{len(details)} invalid tick(s)", details)
    return ticks


def encode_page(ticks: list[SourcedTick], next_cursor: str | None) -> bytes:
    return _encode({"ticks": ticks, "next_cursor": next_cursor})


def _refused(what: str, details: list[dict[str, Any]]) -> ApiError:
    return ApiError(422, "validation_failed", f"{what}; nothing was stored", details)


# Bounds each field's schema says; the rules themselves are `tick_problem`'s (same constants).
_BOUNDS: dict[str, dict[str, Any]] = {
    "source": {"pattern": f"^{SOURCE_PATTERN}$", "description": "connector / terminal id"},
    "symbol": {"pattern": f"^{SYMBOL_PATTERN}$"},
    "time_msc": {
        "minimum": MIN_TIME_MSC,
        "maximum": MAX_TIME_MSC,
        "description": "ms since epoch, UTC",
    },
    "sequence": {"minimum": 0, "maximum": INT64_MAX, "description": "per-source sequence"},
    "bid": {"exclusiveMinimum": 0},
    "ask": {"exclusiveMinimum": 0, "description": "at least bid"},
    "last": {"minimum": 0},
    "volume": {"minimum": 0, "maximum": INT64_MAX},
    "volume_real": {"minimum": 0},
    "flags": {"minimum": 0, "maximum": UINT32_MAX, "description": "MT5 TICK_FLAG_* bits"},
}


def openapi_components() -> dict[str, dict[str, Any]]:
    """`Tick`, `TickBatch` and `TickPage` for the OpenAPI document."""
    (_, components) = msgspec.json.schema_components([SourcedTick])
    tick = dict(components["SourcedTick"])
    tick["title"] = "Tick"
    tick["description"] = "One MT5 tick. Identity: (source, symbol, time_msc, sequence)."
    tick["additionalProperties"] = False
    tick["properties"] = {
        name: {**schema, **_BOUNDS.get(name, {})} for name, schema in tick["properties"].items()
    }
    ref = {"$ref": "#/components/schemas/Tick"}
    return {
        "Tick": tick,
        "TickBatch": {
            "type": "object",
            "additionalProperties": False,
            "required": ["ticks"],
            "properties": {
                "ticks": {"type": "array", "items": ref, "minItems": 1, "maxItems": MAX_BATCH}
            },
        },
        "TickPage": {
            "type": "object",
            "required": ["ticks", "next_cursor"],
            "properties": {
                "ticks": {"type": "array", "items": ref},
                "next_cursor": {
                    "anyOf": [{"type": "string"}, {"type": "null"}],
                    "description": "pass as `cursor` for the next page",
                },
            },
        },
    }
