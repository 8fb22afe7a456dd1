"""Where the token signing keys come from.

Production mounts an Ed25519 private key (PEM) for the service that issues tokens and gives
the others only what they need to verify. In development, when no key is configured, one is
generated once under `<data_dir>/keys/` (mode 0600) so that `make demo` works out of the box.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aitrading.core.infrastructure.config_manager import Settings, env_name
from aitrading.core.security.jwt_manager import KeyRing, SigningKey


def _kid(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def development_key_file(settings: Settings) -> Path:
    return settings.data_dir.resolve() / "keys" / "jwt-ed25519.pem"


def load_key_ring(settings: Settings) -> KeyRing:
    """The signing key ring from `security.jwt_key_file`, or a development key."""
    path = settings.security.jwt_key_file
    if path is None:
        if settings.environment == "production":
            raise ValueError(f"set {env_name('security.jwt_key_file')}: production has no dev key")
        path = development_key_file(settings)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process created it first; read theirs
            else:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(pem)
    pem_bytes = path.read_bytes()
    key = serialization.load_pem_private_key(pem_bytes, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{env_name('security.jwt_key_file')}: {path} is not an Ed25519 key")
    return KeyRing(SigningKey(kid=_kid(key), private_key=key))
