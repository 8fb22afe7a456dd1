"""The connector's config: validated, and never a secret in the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from keyring.backend import KeyringBackend
from pydantic import ValidationError

from aitrading.client.config_manager.connector_config import (
    API_KEY,
    MT5_PASSWORD,
    ConnectorConfig,
    load,
    save,
    store_secrets,
)
from aitrading.client.config_manager.secret_store import (
    DpapiStore,
    KeyringStore,
    NoProtectedStoreError,
)

GOOD: dict[str, Any] = {
    "bridge_url": "wss://bridge.example.com/api/v1/ingest",
    "gateway_url": "https://api.example.com",
    "source": "terminal-1",
    "symbols": ["EURUSD", "XAUUSD"],
    "mt5_login": 5001234,
    "mt5_server": "Broker-Demo",
}


class MemoryKeyring(KeyringBackend):
    """A stand-in for an OS keyring (the unit under test is the config manager)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[tuple[str, str], str] = {}

    def set_password(self, service: str, username: str, password: str) -> None:
        self.values[(service, username)] = password

    def get_password(self, service: str, username: str) -> str | None:
        return self.values.get((service, username))

    def delete_password(self, service: str, username: str) -> None:
        self.values.pop((service, username), None)


def test_the_config_file_never_holds_a_secret(tmp_path: Path) -> None:
    path = tmp_path / "connector.json"
    save(path, ConnectorConfig.model_validate(GOOD))
    store = KeyringStore(MemoryKeyring())
    store_secrets(store, "mt5 password Ω 42", "ait_abc_def-secret-key")
    raw = path.read_bytes()
    assert b"mt5 password" not in raw
    assert b"secret-key" not in raw
    assert (path.stat().st_mode & 0o777) == 0o600
    assert load(path).symbols == ("EURUSD", "XAUUSD")
    assert store.get(MT5_PASSWORD) == "mt5 password Ω 42"
    assert store.get(API_KEY) == "ait_abc_def-secret-key"


def test_no_protected_store_is_a_clear_error_not_a_plaintext_fallback() -> None:
    from keyring.backends import fail

    with pytest.raises(NoProtectedStoreError, match="never keeps secrets in plaintext"):
        KeyringStore(fail.Keyring())


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"bridge_url": "ws://bridge.example.com/api/v1/ingest"}, "wss://"),
        ({"symbols": ["EUR USD"]}, "not MT5 symbols"),
        ({"mt5_login": 0}, "mt5_login"),
        ({"password": "x"}, "password"),  # secrets have no place in the file
    ],
)
def test_bad_configs_are_refused(change: dict[str, Any], why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        ConnectorConfig.model_validate({**GOOD, **change})


def test_plaintext_only_to_loopback() -> None:
    local = ConnectorConfig.model_validate(
        {
            **GOOD,
            "bridge_url": "ws://127.0.0.1:8001/api/v1/ingest",
            "gateway_url": "http://localhost:8000",
        }
    )
    assert local.bridge_url.startswith("ws://")


class FakeWin32Crypt:
    """A STAND-IN for pywin32's win32crypt (DPAPI exists only on Windows): it records the
    flags and entropy the store passes, and 'encrypts' reversibly so the file can be read."""

    calls: list[tuple[bytes, int]] = []

    @classmethod
    def CryptProtectData(cls, data: bytes, name: str, entropy: bytes, *_: object) -> bytes:
        cls.calls.append((entropy, int(_[-1])))
        return bytes(b ^ 0x5A for b in data)

    @classmethod
    def CryptUnprotectData(cls, blob: bytes, entropy: bytes, *_: object) -> tuple[str, bytes]:
        return "", bytes(b ^ 0x5A for b in blob)


def test_dpapi_store_uses_user_scope_entropy_and_no_ui(tmp_path: Path) -> None:
    store = DpapiStore(tmp_path, FakeWin32Crypt)
    store.put(MT5_PASSWORD, "hunter2 and more")
    assert store.get(MT5_PASSWORD) == "hunter2 and more"
    assert b"hunter2" not in (tmp_path / "secrets.dpapi.json").read_bytes()
    entropy, flags = FakeWin32Crypt.calls[-1]
    assert entropy == b"aitrading-connector/v1"
    assert flags == 0x1  # CRYPTPROTECT_UI_FORBIDDEN; user scope (no LOCAL_MACHINE flag)


def test_the_capture_interval_is_bounded_and_reaches_the_connector() -> None:
    """MT5 has no push: the interval is the longest a tick waits to be read. 10 ms by default
    (inside the seed's 50 ms), at most a second, never a busy loop."""
    from aitrading.cli.connector_cmd import options_from

    assert options_from(ConnectorConfig.model_validate(GOOD), None).capture_interval_s == 0.01
    slower = ConnectorConfig.model_validate({**GOOD, "capture_interval_ms": 250})
    assert options_from(slower, None).capture_interval_s == 0.25
    for bad in (0, 1001, "fast"):
        with pytest.raises(ValidationError, match="capture_interval_ms"):
            ConnectorConfig.model_validate({**GOOD, "capture_interval_ms": bad})
