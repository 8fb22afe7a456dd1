"""Released migrations never change, and only migrations create schema.

A revision that imported live DDL from the library changed whenever the library did, so a
database migrated last month and one migrated today could differ under the same revision
number. Each released revision's text is recorded in `schema/frozen.json`; a change to it
fails here, naming the revision, and the fix is a new revision. A new revision is added to
the manifest when it is released (`python -m tests.unit.test_frozen_migrations` prints it).
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import sys
from pathlib import Path

import pytest

from aitrading.services.database_service.schema import clickhouse

ROOT = Path(__file__).parents[2]
SCHEMA = ROOT / "services/database_service/schema"
VERSIONS = SCHEMA / "postgres/versions"
MANIFEST = SCHEMA / "frozen.json"
# the TTL the ClickHouse DDL is rendered with for its fingerprint (a setting, not schema shape)
_TTL_DAYS = 30
_ALLOWED_IMPORTS = ("alembic", "sqlalchemy", "aitrading.services.database_service.schema.postgres")
_DDL = re.compile(
    r"\bCREATE\s+(OR\s+REPLACE\s+)?(TABLE|SCHEMA|INDEX|TRIGGER|FUNCTION|ROLE|MATERIALIZED|VIEW)\b",
    re.IGNORECASE,
)
# Files outside the schema package that may hold DDL, each with the reason.
_NOT_PLATFORM_SCHEMA = {
    "client/metatrader_connector/outbox.py": "the connector's own local SQLite outbox file",
    "client/security/instruction_guard.py": "the connector's own local SQLite nonce file",
    "core/logging/compression_probe.py": "a throw-away copy of `logs`, dropped by the probe",
}


def fingerprints() -> dict[str, str]:
    prints = {
        f"postgres/{path.name}": hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(VERSIONS.glob("*.py"))
    }
    for migration in clickhouse.migrations(_TTL_DAYS):
        text = "\n".join(migration.statements).encode()
        prints[f"clickhouse/{migration.version:04d}_{migration.name}"] = hashlib.sha256(
            text
        ).hexdigest()
    return prints


def test_released_revisions_are_unchanged() -> None:
    released: dict[str, str] = json.loads(MANIFEST.read_text())
    now = fingerprints()
    changed = sorted(name for name, digest in released.items() if now.get(name) != digest)
    assert not changed, (
        f"released migrations changed: {changed}; restore them and put the change in a new revision"
    )
    unreleased = sorted(set(now) - set(released))
    assert not unreleased, (
        f"revisions missing from {MANIFEST.name}: {unreleased}; add them when they are released"
        " (python -m tests.unit.test_frozen_migrations)"
    )


@pytest.mark.parametrize("path", sorted(VERSIONS.glob("*.py")), ids=lambda p: p.name)
def test_a_revision_holds_its_own_ddl(path: Path) -> None:
    tree = ast.parse(path.read_text())
    imported = [
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    ] + [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ]
    foreign = [m for m in imported if not m.startswith(_ALLOWED_IMPORTS)]
    assert not foreign, f"{path.name} imports {foreign}: a revision must not depend on live code"


def test_only_the_schema_package_holds_platform_ddl() -> None:
    offenders = []
    for folder in ("core", "services", "client", "aitrading/cli", "operator"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if path.is_relative_to(SCHEMA) or relative in _NOT_PLATFORM_SCHEMA:
                continue
            if _DDL.search(path.read_text()):
                offenders.append(relative)
    assert not offenders, f"schema created outside the migrations: {offenders}"


def test_the_ddl_check_would_catch_library_ddl() -> None:
    assert _DDL.search("await conn.execute('create table if not exists t (a int)')")
    assert _DDL.search("CREATE OR REPLACE FUNCTION f() RETURNS trigger")
    assert not _DDL.search("INSERT INTO created_tables VALUES (1)")


if __name__ == "__main__":
    json.dump(fingerprints(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
