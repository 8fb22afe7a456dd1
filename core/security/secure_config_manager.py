"""Secrets at rest (AES-256-GCM envelope encryption) and a log filter that keeps them out.

Each secret gets its own random 256-bit data key; the value is sealed with it (AES-GCM, the
secret's name as associated data, so a ciphertext cannot be moved to another name), and the
data key is wrapped by the master key. The master key never touches disk next to the vault:
it comes from the environment, a mounted Kubernetes Secret or the OS keyring. Rotating the
master key re-wraps every data key and replaces the vault file atomically — a crash leaves
either the old or the new file, both readable by the keys that made them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

from aitrading.core.infrastructure.config_manager import SecuritySettings, env_name
from aitrading.core.security.redaction import MASK, redact, secret_name

VAULT_FORMAT = 1
KEY_BYTES = 32
NONCE_BYTES = 12


class SecretsError(Exception):
    """A vault or master-key problem. Messages never contain key material or values."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode(), validate=True)


@dataclass(frozen=True)
class MasterKey:
    kid: str
    key: bytes

    @classmethod
    def from_bytes(cls, key: bytes) -> MasterKey:
        if len(key) != KEY_BYTES:
            raise SecretsError(f"a master key must be {KEY_BYTES} bytes, got {len(key)}")
        return cls(kid=hashlib.sha256(b"aitrading-master:" + key).hexdigest()[:16], key=key)

    @classmethod
    def from_base64(cls, text: str) -> MasterKey:
        try:
            return cls.from_bytes(_unb64(text.strip()))
        except (binascii.Error, ValueError):
            raise SecretsError("the master key is not valid base64") from None

    @classmethod
    def generate(cls) -> MasterKey:
        return cls.from_bytes(secrets.token_bytes(KEY_BYTES))

    def __repr__(self) -> str:  # never show the key
        return f"MasterKey(kid={self.kid!r})"


class MasterKeyring:
    """The primary master key (wraps new data keys) plus older ones that can still unwrap."""

    def __init__(self, primary: MasterKey, older: Iterable[MasterKey] = ()) -> None:
        self.primary = primary
        self._keys = {k.kid: k for k in (*older, primary)}

    def get(self, kid: str) -> MasterKey:
        try:
            return self._keys[kid]
        except KeyError:
            raise SecretsError(f"no master key with id {kid!r} is loaded") from None


def master_keyring_from_settings(settings: SecuritySettings) -> MasterKeyring:
    """The master key from the environment, a mounted file, or the OS keyring, in that order."""
    if settings.master_key is not None:
        return MasterKeyring(MasterKey.from_base64(settings.master_key.get_secret_value()))
    if settings.master_key_file is not None:
        try:
            text = settings.master_key_file.read_text(encoding="ascii")
        except OSError as exc:
            raise SecretsError(f"cannot read the master key file: {exc.strerror}") from None
        return MasterKeyring(MasterKey.from_base64(text))
    stored = _keyring_master_key()
    if stored:
        return MasterKeyring(MasterKey.from_base64(stored))
    raise SecretsError(
        f"no master key: set {env_name('security.master_key')} or "
        f"{env_name('security.master_key_file')}, or store one in the OS keyring"
    )


def _keyring_master_key() -> str | None:
    """The OS keyring's copy (Windows Credential Manager, macOS Keychain), if the extra is in."""
    try:
        import keyring
    except ImportError:
        return None
    value = keyring.get_password("aitrading", "master-key")
    return str(value) if value else None


class SecretVault:
    """Named secrets in one JSON file, each sealed under its own data key."""

    def __init__(self, path: Path, keys: MasterKeyring) -> None:
        self.path = path
        self._keys = keys

    def put(self, name: str, value: str | SecretStr) -> None:
        plain = value.get_secret_value() if isinstance(value, SecretStr) else value
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = AESGCM(data_key).encrypt(nonce, plain.encode(), name.encode())
        entries = self._read()
        entries[name] = {
            "nonce": _b64(nonce),
            "ciphertext": _b64(sealed),
            **self._wrap(name, data_key),
        }
        self._write(entries)

    def get(self, name: str) -> SecretStr:
        entry = self._read().get(name)
        if entry is None:
            raise SecretsError(f"no secret named {name!r}")
        data_key = self._unwrap(name, entry)
        try:
            plain = AESGCM(data_key).decrypt(
                _unb64(entry["nonce"]), _unb64(entry["ciphertext"]), name.encode()
            )
        except InvalidTag:
            raise SecretsError(f"secret {name!r} failed authentication (tampered)") from None
        return SecretStr(plain.decode())

    def names(self) -> list[str]:
        return sorted(self._read())

    def delete(self, name: str) -> None:
        entries = self._read()
        if entries.pop(name, None) is not None:
            self._write(entries)

    def rotate_master(self, new: MasterKeyring) -> int:
        """Re-wrap every data key under `new.primary`; values are never re-encrypted or lost."""
        entries = self._read()
        for name, entry in entries.items():
            entry.update(_wrap_with(new.primary, name, self._unwrap(name, entry)))
        self._write(entries)
        self._keys = new
        return len(entries)

    def _wrap(self, name: str, data_key: bytes) -> dict[str, str]:
        return _wrap_with(self._keys.primary, name, data_key)

    def _unwrap(self, name: str, entry: dict[str, str]) -> bytes:
        master = self._keys.get(entry["kid"])
        try:
            return AESGCM(master.key).decrypt(
                _unb64(entry["key_nonce"]), _unb64(entry["wrapped_key"]), name.encode()
            )
        except InvalidTag:
            raise SecretsError(f"the data key of {name!r} failed authentication") from None

    def _read(self) -> dict[str, dict[str, str]]:
        if not self.path.exists():
            return {}
        try:
            document: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SecretsError(f"cannot read vault {self.path}: {type(exc).__name__}") from None
        if document.get("format") != VAULT_FORMAT:
            raise SecretsError(f"vault {self.path} has unknown format {document.get('format')!r}")
        entries: dict[str, dict[str, str]] = document["secrets"]
        return entries

    def _write(self, entries: dict[str, dict[str, str]]) -> None:
        """Write a temp file, fsync, rename over the old one, fsync the directory."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"format": VAULT_FORMAT, "secrets": entries}, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _wrap_with(master: MasterKey, name: str, data_key: bytes) -> dict[str, str]:
    nonce = secrets.token_bytes(NONCE_BYTES)
    wrapped = AESGCM(master.key).encrypt(nonce, data_key, name.encode())
    return {"kid": master.kid, "key_nonce": _b64(nonce), "wrapped_key": _b64(wrapped)}


# What every `logging.LogRecord` has; anything else on a record came from `extra=`.
STANDARD_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
_PLAIN = (int, float, bool, type(None))


class RedactingFilter(logging.Filter):
    """Masks secrets in every record that passes: known values, credentials, tokens.

    Attach it to handlers (not loggers) so records from every library are covered. The
    message is rendered once, redacted, and stored with its arguments cleared. The fields a
    caller passed with `extra=` are redacted too: a value under a secret's name (`password`,
    `token`, `dsn`…) is masked whole, any other text searched like the message, and any other
    object (a dict, a URL) turned into its redacted text, as a sink would print it.
    """

    def __init__(self, known_values: Iterable[str | SecretStr] = ()) -> None:
        super().__init__()
        self._known: list[str] = []  # longest first, so a longer secret is masked whole
        for value in known_values:
            self.add(value)

    def add(self, value: str | SecretStr) -> None:
        plain = value.get_secret_value() if isinstance(value, SecretStr) else value
        if len(plain) >= 4 and plain not in self._known:  # masking "a" would reveal nothing
            self._known = sorted([*self._known, plain], key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for value in self._known:
            text = text.replace(value, MASK)
        return redact(text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.scrub(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        fields = vars(record)
        for name in fields.keys() - STANDARD_RECORD_ATTRS:
            value = fields[name]
            if secret_name(name):
                fields[name] = MASK
            elif not isinstance(value, _PLAIN):
                fields[name] = self.scrub(value if isinstance(value, str) else str(value))
        return True
