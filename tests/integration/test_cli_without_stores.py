"""Every command of `aitrading --help`, run as a new user might before anything is up.

The commands are read from the CLI itself, so a new command is covered the day it is added
(one that needs arguments must be given some in `ARGUMENTS`, or this test names it). Nothing
runs: no stores, no services, no cluster, an empty data dir and home. Each command either
works without live stores (config, key generation, the cost model on scratch stores, the
embedded `stores up` and `demo`, which start what they need) or fails cleanly: a short
message on stderr naming what is missing, exit status 1 (2 for bad usage or configuration),
and never a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer

from aitrading.cli.main import app

from .conftest import embedded_env

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "aitrading.cli"]
NOBODY = "00000000-0000-0000-0000-000000000000"
PASSWORD = "a long enough password\n"

# (arguments, stdin) for the commands that need some; the rest run bare.
ARGUMENTS: dict[str, tuple[list[str], str]] = {
    "serve": (["data-bridge"], ""),
    "mt5-sim": (["--duration", "3"], ""),
    "demo": (["--duration", "1"], ""),
    "audit keygen": (["{tmp}/checkpoint.pem"], ""),
    "db runtime-login": (["aitrading_app", "--password-stdin"], PASSWORD),
    "users create": (["--email", "new@example.com", "--password-stdin"], PASSWORD),
    "users api-key": ([NOBODY, "--name", "reporting"], ""),
    "users subscribe": ([NOBODY, "--plan", "pro"], ""),
    "logs costs": (["--json"], ""),
    "tls issue": (["{tmp}/certs", "--name", "postgres"], ""),
    "ticks watch": (["EURUSD", "--count", "1"], ""),
}
# Run after the others, in this order: they start (and stop) embedded stores themselves.
LAST = ("stores up", "stores down", "demo")
# Servers: with nothing to talk to they either fail cleanly or keep serving, degraded.
SERVERS = {"serve"}


def leaf_commands() -> Iterator[tuple[str, list[str]]]:
    def walk(command: object, path: list[str]) -> Iterator[tuple[str, list[str]]]:
        children = getattr(command, "commands", None)
        if children:
            for name, child in children.items():
                yield from walk(child, [*path, name])
            return
        required = [p.name for p in getattr(command, "params", []) if p.required]
        yield " ".join(path), [str(name) for name in required]

    yield from walk(typer.main.get_command(app), [])


def run(words: str, tmp: Path, env: dict[str, str]) -> tuple[int | None, str]:
    arguments, stdin = ARGUMENTS.get(words, ([], ""))
    args = [*words.split(), *(a.replace("{tmp}", str(tmp)) for a in arguments)]
    process = subprocess.Popen(
        [*CLI, *args],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = process.communicate(stdin, timeout=20 if words in SERVERS else 240)
        return process.returncode, output
    except subprocess.TimeoutExpired:  # a server that keeps serving without its stores
        process.terminate()
        output, _ = process.communicate(timeout=60)
        return None, output


def test_every_command_works_or_fails_in_one_line_with_nothing_running(tmp_path: Path) -> None:
    commands = dict(leaf_commands())
    unprepared = [w for w, required in commands.items() if required and w not in ARGUMENTS]
    assert not unprepared, f"give these commands arguments in ARGUMENTS: {unprepared}"
    home = tmp_path / "home"
    home.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AITRADING_") and k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")
    }
    env.update(embedded_env(tmp_path / "data"), HOME=str(home), COLUMNS="200")
    order = [w for w in commands if w not in LAST] + [w for w in LAST if w in commands]
    problems = []
    try:
        for words in order:
            code, output = run(words, tmp_path, env)
            if "Traceback" in output or 'File "' in output:
                problems.append(f"{words}: a traceback\n{output[-1500:]}")
            elif code not in (0, 1, 2, None) or (code is None and words not in SERVERS):
                problems.append(f"{words}: exit status {code}\n{output[-800:]}")
            elif code in (1, 2) and not output.strip():
                problems.append(f"{words}: failed without saying why")
    finally:
        subprocess.run(
            [*CLI, "stores", "down"], env=env, capture_output=True, timeout=120, check=False
        )
    assert not problems, "\n\n".join(problems)


def test_a_missing_store_is_named_with_how_to_start_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AITRADING_")}
    env.update(embedded_env(tmp_path / "data"), HOME=str(tmp_path))
    result = subprocess.run(
        [*CLI, "users", "subscribe", NOBODY, "--plan", "pro"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    port = env["AITRADING_POSTGRES_PORT"]
    assert f"PostgreSQL is not reachable at 127.0.0.1:{port}" in lines[0], lines
    assert "stores up" in lines[0]
