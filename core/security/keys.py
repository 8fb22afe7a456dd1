"""Where the token signing keys come from.

Production mounts an Ed25519 private key (PEM) for the service that issues tokens and gives
the others only what they need to verify. In development, when no key is configured, one is
generated once under `<data_dir>/keys/` (mode 0600) so that `make demo` works out of the box.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from aitrading.core.infrastructure.config_manager import Settings, env_name
from aitrading.core.infrastructure.environment import rules_for
from aitrading.core.security.jwt_manager import KeyRing, SigningKey


def key_id(public_key: Ed25519PublicKey) -> str:
    """A stable id for a public key (the `kid` of tokens, the key id of audit checkpoints)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def ed25519_pem() -> bytes:
    """A new Ed25519 private key, PKCS#8 PEM."""
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_new_key(path: Path) -> None:
    """A new Ed25519 private key as PEM, created 0600 and never over an existing file."""
    pem = ed25519_pem()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def development_key_file(settings: Settings) -> Path:
    return settings.data_dir.resolve() / "keys" / "jwt-ed25519.pem"


def load_key_ring(settings: Settings) -> KeyRing:
    """The signing key ring from `security.jwt_key_file`, or a development key."""
    path = settings.security.jwt_key_file
    if path is None:
        if not rules_for(settings.environment).dev_keys:
            raise ValueError(f"set {env_name('security.jwt_key_file')}: production has no dev key")
        path = development_key_file(settings)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):  # another process made it: read theirs
                write_new_key(path)
    pem = path.read_bytes()
    try:
        key = SigningKey.from_pem("pending", pem)
    except ValueError:
        raise ValueError(
            f"{env_name('security.jwt_key_file')}: {path} is not an Ed25519 key"
        ) from None
    return KeyRing(SigningKey(kid=key_id(key.public_key), private_key=key.private_key))
