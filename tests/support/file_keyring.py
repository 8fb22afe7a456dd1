"""A STAND-IN OS keyring for tests on a machine without one (no Secret Service here): a
keyring backend that keeps its values in a file named by `AITRADING_TEST_KEYRING_FILE`.

It protects nothing — it exists so that `aitrading connector login` and `run`, two
processes, can be tested end to end here; select it with
`PYTHON_KEYRING_BACKEND=tests.support.file_keyring.FileKeyring`. Real protection (DPAPI,
Secret Service, Keychain) is verified on those systems.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend


class FileKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    @property
    def _path(self) -> Path:
        return Path(os.environ["AITRADING_TEST_KEYRING_FILE"])

    def _load(self) -> dict[str, str]:
        return json.loads(self._path.read_text()) if self._path.exists() else {}

    def set_password(self, service: str, username: str, password: str) -> None:
        values = self._load()
        values[f"{service}/{username}"] = password
        self._path.write_text(json.dumps(values))

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}/{username}")

    def delete_password(self, service: str, username: str) -> None:
        values = self._load()
        values.pop(f"{service}/{username}", None)
        self._path.write_text(json.dumps(values))
