"""The hash-chained audit log in the real embedded PostgreSQL: appends, refusals, tampering."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aitrading.core.infrastructure.config_manager import Settings, env_name
from aitrading.core.security.audit_logger import AuditLog, load_signing_key, write_signing_key
from aitrading.core.stores.embedded import EmbeddedPostgres
from aitrading.core.stores.postgres import PostgresStore
from tests.support.databases import migrated_database
from tests.support.waiting import until

from .conftest import session_audit_key

pytestmark = pytest.mark.integration


@pytest.fixture
async def audit_db(settings: Settings, postgres: PostgresStore) -> AsyncIterator[PostgresStore]:
    """A database of its own per test, with the schema the migrations create."""
    store = await PostgresStore.create(await migrated_database(settings, postgres))
    yield store
    await store.close()


@pytest.fixture
def audit(audit_db: PostgresStore) -> AuditLog:
    return AuditLog(audit_db.pool)


@pytest.fixture
def signing_key(tmp_path: Path) -> Ed25519PrivateKey:
    path = tmp_path / "audit.pem"
    write_signing_key(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    return load_signing_key(path)


async def fill(log: AuditLog, n: int) -> None:
    for i in range(n):
        await log.append("admin@x", "login", f"user/{i}", "success", {"ip": "203.0.113.7", "n": i})


async def tamper(postgres: PostgresStore, sql: str) -> None:
    """What an attacker with the superuser could do: bypass the triggers and rewrite rows."""
    async with postgres.pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(sql)


async def test_appends_chain_and_verify(audit: AuditLog, signing_key: Ed25519PrivateKey) -> None:
    first = await audit.append("u1", "token.revoke", "token/abc", "success", {"jti": "abc"})
    second = await audit.append("u1", "login", "user/u1", "failure")
    assert (first.seq, second.seq) == (1, 2)
    assert second.prev_hash == first.hash
    assert await audit.checkpoint(signing_key) == 2
    report = await audit.verify(signing_key.public_key())
    assert report.ok, report
    assert (report.records, report.checkpoints) == (2, 1)


async def test_concurrent_appends_are_serialised(
    audit: AuditLog, signing_key: Ed25519PrivateKey
) -> None:
    records = await asyncio.gather(
        *(audit.append("svc", "order.create", f"order/{i}", "success") for i in range(40))
    )
    assert sorted(r.seq for r in records) == list(range(1, 41))
    assert (await audit.verify(signing_key.public_key())).ok


async def test_update_delete_truncate_are_refused(audit: AuditLog, audit_db: PostgresStore) -> None:
    await fill(audit, 2)
    for sql in (
        "UPDATE audit_log SET outcome = 'failure' WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 2",
        "TRUNCATE audit_log",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await audit_db.pool.execute(sql)


@pytest.mark.parametrize(
    ("attack", "bad_seq", "words"),
    [
        (
            'UPDATE {t} SET payload = \'{{"ip": "198.51.100.1", "n": 2}}\' WHERE seq = 3',
            3,
            "edited",
        ),
        ("DELETE FROM {t} WHERE seq = 2", 2, "missing"),
        (
            # swap records 2 and 3, each keeping its own hashes: the order is what changed
            "UPDATE {t} SET seq = -2 WHERE seq = 2; UPDATE {t} SET seq = 2 WHERE seq = 3;"
            " UPDATE {t} SET seq = 3 WHERE seq = -2",
            2,
            "reordered",
        ),
        ("DELETE FROM {t} WHERE seq >= 4", 4, "truncated"),
    ],
)
async def test_verify_finds_the_first_bad_sequence(
    audit: AuditLog,
    audit_db: PostgresStore,
    signing_key: Ed25519PrivateKey,
    attack: str,
    bad_seq: int,
    words: str,
) -> None:
    await fill(audit, 5)
    await audit.checkpoint(signing_key)
    await tamper(audit_db, attack.format(t="audit_log"))
    report = await audit.verify(signing_key.public_key())
    assert not report.ok
    assert report.first_bad_seq == bad_seq, report
    assert words in report.problem


async def test_a_consistently_rewritten_chain_is_caught_by_the_checkpoint(
    audit: AuditLog, audit_db: PostgresStore, signing_key: Ed25519PrivateKey
) -> None:
    await fill(audit, 3)
    await audit.checkpoint(signing_key)
    table = "audit_log"
    await tamper(audit_db, f"DELETE FROM {table}")
    await fill(audit, 3)  # a fresh, internally valid chain
    report = await audit.verify(signing_key.public_key())
    assert report.first_bad_seq == 3
    assert "checkpoint" in report.problem


async def test_checkpoint_signed_by_another_key_is_rejected(
    audit: AuditLog, signing_key: Ed25519PrivateKey
) -> None:
    await fill(audit, 1)
    await audit.checkpoint(Ed25519PrivateKey.generate())
    report = await audit.verify(signing_key.public_key())
    assert not report.ok
    assert "invalid signature" in report.problem


async def test_cli_verify_exit_codes(
    settings: Settings, postgres: PostgresStore, tmp_path: Path
) -> None:
    key_path = tmp_path / "cli-audit.pem"
    write_signing_key(key_path)
    own = await migrated_database(settings, postgres)

    async def prepare(tampered: bool) -> None:
        store = await PostgresStore.create(own)
        try:
            log = AuditLog(store.pool)
            if not tampered:
                await fill(log, 4)
                await log.checkpoint(load_signing_key(key_path))
            else:
                await tamper(store, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
        finally:
            await store.close()

    env = {
        **os.environ,
        "AITRADING_DATA_DIR": str(settings.data_dir),
        env_name("postgres.port"): str(settings.postgres.port),
        env_name("postgres.database"): own.postgres.database,
        env_name("security.audit_signing_key_file"): str(key_path),
        "COLUMNS": "200",
    }
    command = [sys.executable, "-m", "aitrading.cli", "audit", "verify"]
    await prepare(tampered=False)
    ok = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, check=False, timeout=60
    )
    assert ok.returncode == 0, ok.stderr
    assert "4 records, 1 checkpoints" in ok.stdout
    await prepare(tampered=True)
    bad = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, check=False, timeout=60
    )
    assert bad.returncode == 1
    assert "sequence 2" in bad.stderr
    assert (
        EmbeddedPostgres(settings).dsn().split("@")[0].split(":")[-1] not in bad.stderr + bad.stdout
    )


async def test_checkpointer_signs_periodically_as_a_hub_component(
    audit: AuditLog, signing_key: Ed25519PrivateKey
) -> None:
    from aitrading.core.infrastructure.central_hub import CentralHub, HealthStatus
    from aitrading.core.security.audit_logger import AuditCheckpointer

    checkpointer = AuditCheckpointer(audit, signing_key, interval_s=0.05, depends_on=())
    hub = CentralHub()
    hub.register(checkpointer)
    await fill(audit, 2)
    await hub.start()
    try:
        await asyncio.wait_for(checkpointer.signed.wait(), 5)
        assert checkpointer.last_seq == 2
        assert hub.health().status is HealthStatus.HEALTHY
        await fill(audit, 1)
    finally:
        await hub.stop()  # signs the head once more
    assert checkpointer.last_seq == 3
    report = await audit.verify(signing_key.public_key())
    assert report.ok
    assert report.checkpoints >= 2


async def test_deleting_checkpoints_with_a_rewritten_chain_is_caught_by_the_external_copy(
    audit: AuditLog, audit_db: PostgresStore, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    from aitrading.core.security.audit_checkpoint_file import CheckpointFile

    copy = CheckpointFile(tmp_path / "checkpoints" / "audit.jsonl")
    await fill(audit, 3)
    await audit.checkpoint(signing_key, copy)
    await audit.checkpoint(signing_key, copy)  # same head: no second line
    assert [c.seq for c in copy.read()] == [3]
    assert oct(copy.path.stat().st_mode & 0o777) == "0o600"
    await tamper(audit_db, "DELETE FROM audit_checkpoints")
    await tamper(audit_db, "DELETE FROM audit_log")
    await fill(audit, 3)  # a fresh, internally valid chain, and no checkpoint to contradict it
    alone = await audit.verify(signing_key.public_key())
    assert alone.ok, "the database alone cannot tell (which is why the copy exists)"
    report = await audit.verify(signing_key.public_key(), copy.read())
    assert not report.ok
    assert report.first_bad_seq == 3
    assert "deleted" in report.problem


async def test_the_runtime_role_cannot_disable_triggers_truncate_or_touch_checkpoints(
    settings: Settings, postgres: PostgresStore
) -> None:
    # the public audit log is the session gateways' too: its checkpoints are signed with their
    # key, or a later verification of it (test_api_gateway) finds a checkpoint it cannot trust
    signing_key = load_signing_key(session_audit_key(settings))
    from urllib.parse import urlsplit, urlunsplit

    from aitrading.cli.db_cmd import _runtime_login
    from aitrading.core.stores.postgres import postgres_dsn
    from aitrading.services.database_service.schema.postgres import migrate

    await migrate(settings)
    login, password = f"rt_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex + "Aa1"
    await _runtime_login(settings, login, password)
    parts = urlsplit(postgres_dsn(settings))
    netloc = f"{login}:{password}@{parts.hostname}:{parts.port}"
    runtime = await asyncpg.create_pool(
        urlunsplit(parts._replace(netloc=netloc)), min_size=1, max_size=2
    )
    try:
        log = AuditLog(runtime)
        record = await log.append(login, "login", "user/x", "success")  # it can append ...
        assert await log.checkpoint(signing_key) == record.seq  # ... and checkpoint
        attacks = [
            "ALTER TABLE public.audit_log DISABLE TRIGGER ALL",
            "DROP TRIGGER audit_log_append_only ON public.audit_log",
            "SET session_replication_role = replica",
            "TRUNCATE public.audit_log",
            "DELETE FROM public.audit_checkpoints",
            "UPDATE public.audit_log SET actor = 'someone else'",
            "CREATE OR REPLACE FUNCTION public.audit_append_only() RETURNS trigger"
            " LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$",
            "DELETE FROM public.alembic_version",
        ]
        for sql in attacks:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with runtime.acquire() as conn:
                    await conn.execute(sql)
        async with runtime.acquire() as conn:  # the record is there, untouched
            actor = await conn.fetchval("SELECT actor FROM audit_log WHERE seq = $1", record.seq)
        assert actor == login
    finally:
        await runtime.close()


async def test_the_verifier_walks_the_chain_on_a_schedule_and_raises_the_alarm(
    audit: AuditLog, audit_db: PostgresStore, signing_key: Ed25519PrivateKey
) -> None:
    """Attached to a running hub, the verifier finds the chain intact, then broken once a
    record is rewritten: the gauge the chart's alert reads drops to 0, the failure counter
    moves, and the hub's health names the sequence."""
    from prometheus_client import CollectorRegistry

    from aitrading.core.infrastructure.central_hub import CentralHub, HealthStatus
    from aitrading.core.security.audit_verifier import AuditVerifier

    registry = CollectorRegistry()
    verifier = AuditVerifier(audit, signing_key.public_key(), 0.05, registry)
    hub = CentralHub()
    await fill(audit, 3)
    await audit.checkpoint(signing_key)
    await hub.start()
    try:
        await hub.attach(verifier)
        await asyncio.wait_for(verifier.verified.wait(), 30)
        assert registry.get_sample_value("aitrading_audit_chain_intact") == 1
        assert hub.health().status is HealthStatus.HEALTHY
        await tamper(audit_db, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
        await until(
            lambda: registry.get_sample_value("aitrading_audit_chain_intact") == 0,
            "the rewrite found",
        )
        assert (registry.get_sample_value("aitrading_audit_verify_failures_total") or 0) >= 1
        await until(
            lambda: "sequence 2" in hub.health().components["audit-verifier"].reason,
            "the broken sequence named in the hub's health",
        )
        assert hub.health().components["audit-verifier"].status is HealthStatus.DEGRADED
    finally:
        await hub.stop()
