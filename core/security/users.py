"""Users (argon2id password hashes) and API keys (machine clients) in PostgreSQL.

Passwords are hashed with argon2id; a login for an unknown email still spends one argon2
verification, so response time does not reveal which emails exist. API keys look like
`ait_<id>_<secret>`: the id finds the row, the 256-bit secret is compared by its SHA-256
(a slow hash adds nothing for a random secret), and the plaintext is shown once, at creation.

An argon2 hash or verification takes about 0.1 s of CPU by design: it runs in a worker thread
(argon2 releases the GIL), never on the event loop, where one login would stall every other
request of the process for that long.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

if TYPE_CHECKING:
    import asyncpg

_hasher = PasswordHasher()
_dummy_lock = threading.Lock()
_dummy: list[str] = []
KEY_PREFIX = "ait_"


def dummy_hash() -> str:
    """The hash a login for an unknown email is verified against, made once per process.

    Not at import: every process that imports this module (the gateway, the trading-engine,
    the CLI) would pay one argon2 hash before it could start. `UserStore` makes it in the
    background when it is built, so the first unknown email does not take twice as long
    as a known one."""
    with _dummy_lock:
        if not _dummy:
            _dummy.append(_hasher.hash("aitrading-dummy-password"))
        return _dummy[0]


def _verifies(stored: str | None, password: str) -> bool:
    """`password` against `stored`, or against the dummy hash when there is no user (the
    same work either way). Run in a worker thread."""
    try:
        return bool(_hasher.verify(stored if stored is not None else dummy_hash(), password))
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class User:
    id: str
    email: str
    role: str
    scopes: tuple[str, ...] = ()  # an API key's scopes (e.g. "ingest" for a connector)


class UserStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        if not _dummy:  # once per process, not once per store
            threading.Thread(target=dummy_hash, name="argon2-dummy-hash", daemon=True).start()

    async def create(self, email: str, password: str, role: str = "user") -> User:
        if len(password) < 12:
            raise ValueError("passwords need at least 12 characters")
        user_id = f"u_{secrets.token_hex(8)}"
        await self._pool.execute(
            "INSERT INTO users (id, email, password_hash, role) VALUES ($1, lower($2), $3, $4)",
            user_id,
            email,
            await asyncio.to_thread(_hasher.hash, password),
            role,
        )
        return User(user_id, email.lower(), role)

    async def set_password(self, user_id: str, password: str) -> None:
        if len(password) < 12:
            raise ValueError("passwords need at least 12 characters")
        password_hash = await asyncio.to_thread(_hasher.hash, password)
        await self._pool.execute(
            "UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash
        )

    async def authenticate(self, email: str, password: str) -> User | None:
        row = await self._pool.fetchrow(
            "SELECT id, email, role, password_hash, disabled FROM users WHERE email = lower($1)",
            email,
        )
        stored = row["password_hash"] if row is not None else None
        if not await asyncio.to_thread(_verifies, stored, password):
            return None
        if row is None or row["disabled"]:
            return None
        return User(row["id"], row["email"], row["role"])

    async def get(self, user_id: str) -> User | None:
        row = await self._pool.fetchrow(
            "SELECT id, email, role FROM users WHERE id = $1 AND NOT disabled", user_id
        )
        return None if row is None else User(row["id"], row["email"], row["role"])

    async def create_api_key(self, user_id: str, name: str, scopes: tuple[str, ...] = ()) -> str:
        """The key in plaintext — shown once; only its hash is stored."""
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        await self._pool.execute(
            "INSERT INTO api_keys (id, user_id, key_hash, name, scopes)"
            " VALUES ($1, $2, $3, $4, $5)",
            key_id,
            user_id,
            _digest(secret),
            name,
            list(scopes),
        )
        return f"{KEY_PREFIX}{key_id}_{secret}"

    async def verify_api_key(self, key: str) -> User | None:
        if not key.startswith(KEY_PREFIX) or key.count("_") < 2:
            return None
        key_id, _, secret = key[len(KEY_PREFIX) :].partition("_")
        row = await self._pool.fetchrow(
            "SELECT k.key_hash, k.scopes, u.id, u.email, u.role FROM api_keys k JOIN users u"
            " ON u.id = k.user_id WHERE k.id = $1 AND k.revoked_at IS NULL AND NOT u.disabled",
            key_id,
        )
        if row is None or not hmac.compare_digest(row["key_hash"], _digest(secret)):
            return None
        await self._pool.execute("UPDATE api_keys SET last_used_at = now() WHERE id = $1", key_id)
        return User(row["id"], row["email"], row["role"], tuple(row["scopes"] or ()))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
