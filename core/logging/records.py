"""The one shape a log record has once it leaves the process: structured, redacted, traced."""

from __future__ import annotations

from typing import Any

import msgspec

from aitrading.core.logging.record_ids import new_record_id

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LEVEL_RANK = {name: rank for rank, name in enumerate(LEVELS)}


class LogRecord(msgspec.Struct, frozen=True):
    """`record_id` makes every record unique, so a tier move that is retried stores it once."""

    ts_ms: int
    level: str
    service: str
    message: str
    logger: str = ""
    trace_id: str = ""
    request_id: str = ""
    fields: str = "{}"  # canonical JSON of the structured extras
    record_id: str = msgspec.field(default_factory=new_record_id)


encode = msgspec.json.Encoder().encode
decode = msgspec.json.Decoder(LogRecord).decode
decode_many = msgspec.json.Decoder(list[LogRecord]).decode


def fields_json(extras: dict[str, Any]) -> str:
    if not extras:
        return "{}"
    return msgspec.json.encode(extras, order="sorted").decode()
