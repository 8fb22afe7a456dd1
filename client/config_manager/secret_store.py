"""Where the connector's secrets live: never in its config file.

- Windows: **DPAPI** (`CryptProtectData`, user scope, with the connector's entropy and
  `CRYPTPROTECT_UI_FORBIDDEN`), the ciphertext in a file beside the config — only the same
  Windows user on the same machine can decrypt it.
- Elsewhere: the OS keyring (Secret Service, macOS Keychain) through `keyring`.
- Neither available (a headless Linux box without a Secret Service): a clear error, never a
  plaintext fallback.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any, Protocol

from aitrading.core.infrastructure.import_manager import ImportManager

SERVICE = "aitrading-connector"
ENTROPY = b"aitrading-connector/v1"
CRYPTPROTECT_UI_FORBIDDEN = 0x1


class NoProtectedStoreError(RuntimeError):
    """No operating-system store can keep a secret here; the message says what to do."""


class SecretStore(Protocol):
    name: str

    def put(self, key: str, value: str) -> None: ...

    def get(self, key: str) -> str | None: ...


class DpapiStore:
    """Windows DPAPI, user scope; the ciphertexts in `<dir>/secrets.dpapi.json`."""

    name = "windows-dpapi"

    def __init__(self, directory: Path, win32crypt: Any | None = None) -> None:
        self._crypt = win32crypt or ImportManager().require("win32crypt")
        self._path = directory / "secrets.dpapi.json"

    def _load(self) -> dict[str, str]:
        if not self._path.exists():
            return {}
        loaded: dict[str, str] = json.loads(self._path.read_text())
        return loaded

    def put(self, key: str, value: str) -> None:
        blob = self._crypt.CryptProtectData(
            value.encode(), key, ENTROPY, None, None, CRYPTPROTECT_UI_FORBIDDEN
        )
        data = self._load()
        data[key] = base64.b64encode(blob).decode()
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._path.write_text(json.dumps(data))

    def get(self, key: str) -> str | None:
        blob = self._load().get(key)
        if blob is None:
            return None
        _, plain = self._crypt.CryptUnprotectData(
            base64.b64decode(blob), ENTROPY, None, None, CRYPTPROTECT_UI_FORBIDDEN
        )
        return bytes(plain).decode()


class KeyringStore:
    """The OS keyring; refuses the backends that protect nothing."""

    name = "os-keyring"

    def __init__(self, backend: Any | None = None) -> None:
        import keyring
        from keyring.backends import fail

        self._keyring = keyring
        chosen = backend or keyring.get_keyring()
        if isinstance(chosen, fail.Keyring) or "plaintext" in type(chosen).__name__.lower():
            raise NoProtectedStoreError(
                "no protected secret store: this system has no OS keyring (Secret Service,"
                " Keychain) and is not Windows (DPAPI); install and unlock one — the connector"
                " never keeps secrets in plaintext"
            )
        self._backend = chosen

    def put(self, key: str, value: str) -> None:
        self._backend.set_password(SERVICE, key, value)

    def get(self, key: str) -> str | None:
        value: str | None = self._backend.get_password(SERVICE, key)
        return value


def protected_store(directory: Path) -> SecretStore:
    """DPAPI on Windows, the OS keyring elsewhere, or `NoProtectedStoreError`."""
    if sys.platform == "win32":
        return DpapiStore(directory)
    return KeyringStore()
