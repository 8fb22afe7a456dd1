"""Development vs production is decided in core/infrastructure/environment.py only."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from aitrading.core.infrastructure.config_manager import ConfigError, load_settings
from aitrading.core.infrastructure.environment import rules_for

ROOT = Path(__file__).parents[2]
PRODUCT = ("core", "services", "client", "operator", "aitrading/cli")


def test_production_turns_every_convenience_off() -> None:
    development, production = rules_for("development"), rules_for("production")
    assert dataclasses.asdict(development) == {
        "needs_real_servers": False,
        "dev_keys": True,
        "dev_tokens": True,
        "migrate_on_start": True,
        "service_identity_required": False,
        "plaintext_beyond_loopback": True,
    }
    assert all(
        getattr(production, f.name) is not getattr(development, f.name)
        for f in dataclasses.fields(production)
    ), "a rule that is the same in both environments belongs elsewhere"
    with pytest.raises(ValueError, match="unknown environment 'staging'"):
        rules_for("staging")


def test_no_other_module_compares_the_environment_name() -> None:
    compares = re.compile(
        r"environment\s*(==|!=|\bin\b)|[\"'](production|development)[\"']\s*(==|!=)"
    )
    offenders = []
    for folder in PRODUCT:
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "environment.py" and path.parent.name == "infrastructure":
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if compares.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "ask core.infrastructure.environment.rules_for instead:\n" + "\n".join(
        offenders
    )


def test_the_rules_reach_the_settings_that_use_them(tmp_path: Path) -> None:
    """Production refuses to start without real servers (the first rule, applied by Settings)."""
    with pytest.raises(ConfigError, match="production has no embedded stores"):
        load_settings(
            environ={"AITRADING_ENVIRONMENT": "production", "AITRADING_DATA_DIR": str(tmp_path)}
        )
