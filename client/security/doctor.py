"""What `aitrading connector doctor` checks: the process's exploit mitigations (DEP, ASLR,
CFG via `GetProcessMitigationPolicy`) on Windows, and who can read the config everywhere.
Elsewhere it says plainly what it cannot check."""

from __future__ import annotations

import ctypes
import stat
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool | None  # None: cannot be checked here
    detail: str


# PROCESS_MITIGATION_POLICY values and the "enabled" bit of each policy's flags
_POLICIES = {"DEP": (0, 0x1), "ASLR": (1, 0x1), "CFG": (7, 0x1)}


def mitigations() -> list[Finding]:
    if sys.platform == "win32":
        return _windows_mitigations()
    return [Finding(name, None, "Windows only (GetProcessMitigationPolicy)") for name in _POLICIES]


def _windows_mitigations() -> list[Finding]:
    kernel32 = getattr(ctypes, "WinDLL")("kernel32", use_last_error=True)  # noqa: B009 - Windows only
    last_error = getattr(ctypes, "get_last_error")  # noqa: B009 - Windows only
    process = kernel32.GetCurrentProcess()
    found = []
    for name, (policy, bit) in _POLICIES.items():
        flags = ctypes.c_uint64(0)
        ok = kernel32.GetProcessMitigationPolicy(
            process, policy, ctypes.byref(flags), ctypes.sizeof(flags)
        )
        if not ok:
            found.append(Finding(name, False, f"could not query (error {last_error()})"))
            continue
        enabled = bool(flags.value & bit)
        found.append(Finding(name, enabled, "enabled" if enabled else "DISABLED"))
    return found


def config_access(path: Path) -> Finding:
    if not path.exists():
        return Finding("config access", False, f"{path} does not exist")
    if sys.platform == "win32":
        return Finding(
            "config access", None, "NTFS ACLs: check with `icacls` (only your user should read it)"
        )
    mode = stat.S_IMODE(path.stat().st_mode)
    private = not mode & (stat.S_IRWXG | stat.S_IRWXO)
    return Finding(
        "config access", private, f"mode {mode:o}" + ("" if private else ": others can read it")
    )
