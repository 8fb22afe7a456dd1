"""UserStore's password work (argon2, about 0.1 s of CPU each) against the session's PostgreSQL:
it never runs on the event loop, and importing the module does none of it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import uuid
from typing import Any

import pytest

from aitrading.core.security import users as users_module
from aitrading.core.security.users import UserStore
from aitrading.core.stores.postgres import PostgresStore

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery staple"


class _WatchedHasher:
    """The real hasher, but each verification waits until the event loop has run a task while
    it was in progress: only possible when the verification runs off the loop. On the loop,
    the wait times out and the verification is recorded as blocking."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.verifying = threading.Event()
        self.seen_by_loop = threading.Event()
        self.blocked: list[str] = []

    def verify(self, stored: str, password: str) -> bool:
        self.verifying.set()
        if not self.seen_by_loop.wait(timeout=30):
            self.blocked.append("verify")
        self.verifying.clear()
        return bool(self.real.verify(stored, password))

    def hash(self, password: str) -> str:
        return str(self.real.hash(password))


async def _watch(hasher: _WatchedHasher, done: asyncio.Event) -> None:
    while not done.is_set():
        if hasher.verifying.is_set():
            hasher.seen_by_loop.set()
        await asyncio.sleep(0.001)


async def test_a_login_leaves_the_event_loop_free_for_other_requests(
    migrated: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = UserStore(migrated.pool)
    email = f"loop-{uuid.uuid4().hex[:6]}@example.com"
    created = await store.create(email, PASSWORD)
    hasher = _WatchedHasher(users_module._hasher)
    monkeypatch.setattr(users_module, "_hasher", hasher)

    for attempt_email, password, expected in (
        (email, PASSWORD, created.id),  # the right password
        (email, "not the password at all", None),  # the wrong one
        (f"nobody-{uuid.uuid4().hex[:6]}@example.com", PASSWORD, None),  # the dummy hash
    ):
        hasher.seen_by_loop.clear()
        done = asyncio.Event()
        watcher = asyncio.create_task(_watch(hasher, done))
        try:
            user = await store.authenticate(attempt_email, password)
        finally:
            done.set()
            await watcher
        assert (user.id if user else None) == expected
        assert hasher.seen_by_loop.is_set(), "the verification never ran while the loop did"
    assert hasher.blocked == []


def test_importing_the_user_store_makes_no_password_hash() -> None:
    """Every process that imports it (gateway, trading-engine, CLI) would pay for one before
    it could start: the dummy hash is made when a store is built, in the background."""
    probe = (
        "import argon2\n"
        "def refuse(*args, **kwargs):\n"
        "    raise SystemExit('argon2 hashed at import')\n"
        "argon2.PasswordHasher.hash = refuse\n"
        "import aitrading.core.security.users\n"
        "print('imported')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "imported"
