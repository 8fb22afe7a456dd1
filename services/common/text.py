"""Text a database can store, checked at the edge.

JSON allows a NUL character and unpaired UTF-16 surrogates in strings; PostgreSQL refuses
the first, and no UTF-8 encoder takes the second — either used to surface as an HTTP 500 from
deep inside a handler. Request models check their strings with `check_storable` and answer
422 instead.
"""

from __future__ import annotations

from pydantic import BaseModel, field_validator


def check_storable(value: object, path: str = "") -> None:
    """Text PostgreSQL and ClickHouse can store: no NUL, no lone UTF-16 surrogates (JSON
    allows both; the databases refuse them, which used to surface as HTTP 500)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{path or 'text'} contains a NUL character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{path or 'text'} contains an unpaired surrogate") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            check_storable(key, path)
            check_storable(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for item in value:
            check_storable(item, path)


class StorableText(BaseModel):
    """A request body whose every string field (nested lists and dicts too) is storable."""

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: object) -> object:
        check_storable(value)
        return value
