"""`aitrading mt5-sim` as a user starts it, in a subprocess against a test stack: its state
and key from the stack's settings, stdout and stderr together (what the user sees)."""

from __future__ import annotations

import asyncio
import os
import sys

from aitrading.core.infrastructure.config_manager import Settings


async def start_mt5_sim(
    settings: Settings, url: str, *args: str, env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    environment = {
        **os.environ,
        "AITRADING_DATA_DIR": str(settings.data_dir),
        "AITRADING_SECURITY_JWT_KEY_FILE": str(settings.security.jwt_key_file),
        **(env or {}),
    }
    return await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "aitrading", "mt5-sim", "--url", url, *args),
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
