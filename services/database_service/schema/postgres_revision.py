"""Is PostgreSQL's schema at the head revision already? Answered without alembic.

alembic, SQLAlchemy and mako are about 0.4 s of imports. database-service migrates on start
in development (`services.migrate_on_start`), and most starts find the schema up to date: a
restart, a second replica, a rolling update. Those read `alembic_version` through the
service's own pool and compare it with the heads of `postgres/versions/`, read from the
revision files' `revision` and `down_revision` lines; only a database behind them loads
alembic and migrates. `tests/unit/test_postgres_revision.py` pins that these heads are
alembic's own.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncpg

VERSIONS = Path(__file__).parent / "postgres" / "versions"


def _assigned(tree: ast.Module, name: str) -> object:
    """The literal value of the module-level `name = …` (or `name: T = …`)."""
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            try:
                return ast.literal_eval(value)
            except ValueError:
                break
    raise ValueError(f"no literal {name} = (alembic allows one; this check needs it)")


def head_revisions(versions: Path = VERSIONS) -> frozenset[str]:
    """The revisions no other revision names as its `down_revision`."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted(versions.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        try:
            revision = _assigned(tree, "revision")
            down = _assigned(tree, "down_revision")
        except ValueError as exc:
            raise ValueError(f"{path.name}: {exc}") from None
        if not isinstance(revision, str):
            raise ValueError(f"{path.name}: revision is not a string")
        revisions.add(revision)
        if isinstance(down, str):
            parents.add(down)
        elif isinstance(down, tuple | list):
            parents.update(str(d) for d in down)
    return frozenset(revisions - parents)


async def at_head(pool: asyncpg.Pool) -> bool:
    """True when the database's recorded revisions are exactly the heads; False when they
    differ, when nothing was ever migrated, or when the table cannot be read (then alembic
    decides, as before)."""
    import asyncpg

    try:
        rows = await pool.fetch("SELECT version_num FROM alembic_version")
    except asyncpg.PostgresError:
        return False
    return frozenset(str(row["version_num"]) for row in rows) == head_revisions()
