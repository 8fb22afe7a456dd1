"""The heads database-service compares with `alembic_version` before it loads alembic."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from aitrading.services.database_service.schema.postgres import alembic_config
from aitrading.services.database_service.schema.postgres_revision import head_revisions


def test_the_heads_are_alembics_own() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert head_revisions() == frozenset(heads)
    assert heads, "the project has migrations"


def _revision(folder: Path, name: str, body: str) -> None:
    source = f'"""{name}"""\n{body}\n\n\ndef upgrade() -> None:\n    pass\n'
    (folder / f"{name}.py").write_text(source)


def test_branches_merges_and_annotated_assignments(tmp_path: Path) -> None:
    _revision(tmp_path, "a", 'revision = "a"\ndown_revision = None')
    _revision(tmp_path, "b", 'revision: str = "b"\ndown_revision: str | None = "a"')
    _revision(tmp_path, "c", 'revision = "c"\ndown_revision = "a"')
    assert head_revisions(tmp_path) == {"b", "c"}  # two branches
    _revision(tmp_path, "d", 'revision = "d"\ndown_revision = ("b", "c")')
    assert head_revisions(tmp_path) == {"d"}  # merged


def test_a_revision_that_is_not_a_literal_is_named(tmp_path: Path) -> None:
    _revision(tmp_path, "x", "revision = make_id()\ndown_revision = None")
    with pytest.raises(ValueError, match=r"x\.py: no literal revision"):
        head_revisions(tmp_path)
