"""The README's commands, run as written: a new user pastes them, so they must work.

Every ```bash block of README.md is run here (none of them needs a cluster: those live in
docs/kubernetes.md). `make demo` is started with make, as written, until it prints its login
and the commands to try; those are pasted into bash in turn (a token, market data through
the gateway, five live ticks from its stream, an order), then Ctrl-C must stop everything.
`make test` is this suite itself and is not run from inside it. Every other line runs in a
fresh folder that has only the repository's `.venv`, so `.aitrading` and files a line writes
land there, not in the clone; the stores' ports are moved off their defaults so a running
demo is left alone.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import embedded_env

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
THE_SUITE_ITSELF = "make test"


def bash_blocks() -> list[list[str]]:
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [[line for line in block.splitlines() if line.strip()] for block in blocks]


def isolated_env(data_dir: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AITRADING_")}
    ports = embedded_env(data_dir or Path("unused"))
    if data_dir is None:
        del ports["AITRADING_DATA_DIR"]  # the README's default: .aitrading in the folder
    env.update(ports, COLUMNS="200", PYTHONUNBUFFERED="1")
    return env


def test_the_readme_has_the_two_commands_first() -> None:
    first = bash_blocks()[0]
    assert [line.split("#")[0].strip() for line in first] == ["make demo", THE_SUITE_ITSELF]


def test_every_readme_command_line_runs_as_written(tmp_path: Path) -> None:
    folder = tmp_path / "user"
    folder.mkdir()
    (folder / ".venv").symlink_to(REPO / ".venv")
    env = isolated_env(None)
    ran = []
    try:
        for block in bash_blocks()[1:]:
            for line in block:
                result = subprocess.run(
                    ["bash", "-euo", "pipefail", "-c", line],
                    cwd=folder,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=300,
                    check=False,
                )
                output = result.stdout + result.stderr
                assert result.returncode == 0, f"{line}\n{output[-3000:]}"
                assert "Traceback" not in output, line
                ran.append(line)
    finally:
        subprocess.run(
            [str(REPO / ".venv/bin/aitrading"), "stores", "down"],
            cwd=folder,
            env=env,
            capture_output=True,
            timeout=120,
            check=False,
        )
    assert len(ran) >= 5, ran


def test_make_demo_as_written_and_the_commands_it_prints(tmp_path: Path) -> None:
    demo_line = bash_blocks()[0][0].split("#")[0].strip()
    assert demo_line == "make demo"
    env = isolated_env(tmp_path / "data")
    proc = subprocess.Popen(
        ["bash", "-c", f"exec {demo_line}"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    tries: list[str] = []
    try:
        while len(tries) < 4:  # "try:", then a token, market data, the live stream, an order
            line = proc.stdout.readline()
            assert line, "".join(seen)
            seen.append(line)
            if line.startswith("  ") and any(s.startswith("try:") for s in seen):
                tries.append(line.strip())
        while not any(s.startswith("overall=healthy") for s in seen):
            line = proc.stdout.readline()
            assert line, "".join(seen)
            seen.append(line)
        token, market, stream, order = tries

        def pasted(command: str) -> str:
            """What `command` prints when pasted after the token line, as a user would."""
            result = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", f"{token}\n{command}"],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert result.returncode == 0, result.stderr
            return result.stdout

        deadline = time.monotonic() + 180
        while True:  # bars appear once the first ticks are stored
            bars = json.loads(pasted(market))
            if bars.get("bars") or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert bars["bars"], bars
        live = pasted(stream).splitlines()
        assert len(live) == 5, live
        assert all(line.startswith("EURUSD  ") and " bid " in line for line in live), live
        placed = json.loads(pasted(order))
        assert placed.get("client_order_id") == "my-1", placed
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches make and the demo alike
        rest, _ = proc.communicate(timeout=120)
    # make itself ends by the interrupt, as it does for a user's Ctrl-C; the demo stops cleanly
    assert proc.returncode in (0, -signal.SIGINT, 130), rest
    assert "stopped" in rest
    assert "Traceback" not in rest
