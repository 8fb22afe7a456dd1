"""The connector's config file: where to connect and what to capture — and no secret.

`connector.json` holds the bridge URL, the terminal's name, the symbols, the MT5 login and
server, an optional pinned CA; the MT5 password and the platform API key are in the
protected store (`secret_store.py`) and only their names are here. Loading validates
everything and refuses plaintext `ws://` to anything but loopback.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aitrading.client.config_manager.secret_store import SecretStore
from aitrading.core.market.ticks import SOURCE_PATTERN, SYMBOL_PATTERN
from aitrading.core.security.tls import is_loopback

MT5_PASSWORD = "mt5-password"  # noqa: S105 - the name of a secret, not a secret
API_KEY = "platform-api-key"


class ConnectorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bridge_url: str = Field(description="wss://…/api/v1/ingest (ws:// only to loopback)")
    gateway_url: str = Field(description="https://… of the api-gateway (connector tokens)")
    source: str | None = Field(default=None, pattern=f"^{SOURCE_PATTERN}$")
    symbols: tuple[str, ...] = Field(min_length=1, max_length=1000)
    mt5_login: int = Field(ge=1)
    mt5_server: str = Field(min_length=1, max_length=200)
    mt5_path: str | None = None
    pinned_ca: Path | None = None
    connections: int = Field(default=5, ge=1, le=64)
    capture_interval_ms: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="how often each symbol's new ticks are read from the terminal (a tick "
        "waits up to this long before it is captured)",
    )
    max_order_volume: float = Field(default=10.0, gt=0)
    issuer: str = Field(default="aitrading", min_length=1, description="the platform's issuer")

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import re

        bad = [s for s in value if not re.fullmatch(SYMBOL_PATTERN, s)]
        if bad:
            raise ValueError(f"not MT5 symbols: {bad}")
        return value

    @field_validator("bridge_url", "gateway_url")
    @classmethod
    def _transport(cls, value: str) -> str:
        parts = urlsplit(value)
        secure = parts.scheme in ("wss", "https")
        if not secure and not (parts.scheme in ("ws", "http") and is_loopback(parts.hostname)):
            raise ValueError("use wss:// or https:// (TLS 1.3); plaintext only to loopback")
        return value


def save(path: Path, config: ConnectorConfig) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(config.model_dump_json(indent=2))


def load(path: Path) -> ConnectorConfig:
    return ConnectorConfig.model_validate(json.loads(path.read_text()))


def store_secrets(store: SecretStore, mt5_password: str, api_key: str) -> None:
    store.put(MT5_PASSWORD, mt5_password)
    store.put(API_KEY, api_key)
