"""`aitrading db adopt-password`: after a rotation, the owner moves to its new password.

Run as a user (a subprocess of the CLI) against the session's real PostgreSQL, which checks
passwords (scram-sha-256 on TCP). The role stands in for the schema owner: it logs in with
the previous password once, sets the new one, and from then on only the new one works.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from aitrading.core.infrastructure.config_manager import Settings
from aitrading.core.stores.postgres import PostgresStore, postgres_dsn

pytestmark = pytest.mark.integration

OLD = "the-previous-password-0123456789"
NEW = "the-rotated-password-9876543210"


def dsn_for(settings: Settings, role: str, password: str) -> str:
    parts = urlsplit(postgres_dsn(settings))
    netloc = f"{role}:{password}@{parts.hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def adopt(
    settings: Settings, current: str, previous: str | None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AITRADING_")}
    env.update(
        AITRADING_DATA_DIR=str(settings.data_dir),
        AITRADING_POSTGRES_DSN=postgres_dsn(settings),
        AITRADING_POSTGRES_MIGRATION_DSN=current,
    )
    if previous is not None:
        env["AITRADING_POSTGRES_PREVIOUS_MIGRATION_DSN"] = previous
    return subprocess.run(
        [sys.executable, "-m", "aitrading.cli", "db", "adopt-password"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_the_owner_adopts_its_rotated_password_once(
    settings: Settings, postgres: PostgresStore
) -> None:
    role = f"owner_{uuid.uuid4().hex[:8]}"
    await postgres.pool.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{OLD}'")
    try:
        old, new = dsn_for(settings, role, OLD), dsn_for(settings, role, NEW)
        refused = adopt(settings, new, None)  # no previous DSN: it cannot, and says so
        assert refused.returncode == 1
        assert "PREVIOUS_MIGRATION_DSN" in refused.stderr
        assert NEW not in refused.stderr + refused.stdout

        done = adopt(settings, new, old)
        assert done.returncode == 0, done.stderr
        assert "now logs in with the new password" in done.stdout
        conn = await asyncpg.connect(new)
        await conn.close()
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(old)

        again = adopt(settings, new, old)  # the init container runs it on every start
        assert again.returncode == 0, again.stderr
        assert "current" in again.stdout

        wrong = dsn_for(settings, role, "neither-of-the-two-passwords")
        both_bad = adopt(settings, wrong, old)
        assert both_bad.returncode == 1
        assert "refuses both" in both_bad.stderr
        assert OLD not in both_bad.stderr
        assert "neither-of" not in both_bad.stderr
    finally:
        await postgres.pool.execute(f"DROP ROLE IF EXISTS {role}")
