from __future__ import annotations

import sys
from pathlib import Path

import pytest

from aitrading.core.infrastructure.import_manager import (
    ImportManager,
    MissingDependencyError,
    OptionalDependency,
)


def test_require_returns_the_module_and_records_its_cost() -> None:
    imports = ImportManager()
    module = imports.require("json")
    assert module.dumps([1]) == "[1]"
    (record,) = imports.records()
    assert record.module == "json"
    assert record.ok
    assert record.seconds >= 0


def test_missing_optional_dependency_names_distribution_and_command() -> None:
    known = {
        "aitrading_absent_mod": OptionalDependency(
            "aitrading_absent_mod", "absent-dist", "weaviate"
        )
    }
    imports = ImportManager(known)
    with pytest.raises(MissingDependencyError) as caught:
        imports.require("aitrading_absent_mod")
    message = str(caught.value)
    assert "'absent-dist' is missing" in message
    assert "uv sync --extra weaviate" in message
    assert "pip install 'aitrading[weaviate]'" in message
    assert not imports.available("aitrading_absent_mod")
    assert [r.ok for r in imports.records()] == [False]


def test_windows_only_extra_says_so() -> None:
    known = {"aitrading_win_only": OptionalDependency("aitrading_win_only", "pywin32", "windows")}
    with pytest.raises(MissingDependencyError, match="available on Windows only"):
        ImportManager(known).require("aitrading_win_only")


def test_an_import_error_inside_an_installed_package_is_not_disguised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "aitrading_broken_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("import aitrading_no_such_inner_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as caught:
        ImportManager().require("aitrading_broken_pkg")
    assert not isinstance(caught.value, MissingDependencyError)
    assert caught.value.name == "aitrading_no_such_inner_dependency"
    sys.modules.pop("aitrading_broken_pkg", None)


def test_locate_finds_a_package_without_importing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "aitrading_side_effect_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("raise RuntimeError('imported!')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert ImportManager().locate("aitrading_side_effect_pkg") == package
    with pytest.raises(MissingDependencyError):
        ImportManager().locate("aitrading_not_installed_anywhere")
