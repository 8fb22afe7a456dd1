"""The TradingStack's retention days reach the policies `logs enforce` applies."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from aitrading.cli.logs_cmd import app, parse_retention
from aitrading.core.logging.retention_policy_manager import DEFAULT_POLICIES, with_retention_days


def test_days_replace_the_total_and_shorten_the_tiers_inside_it() -> None:
    policies = with_retention_days(dict(DEFAULT_POLICIES), {"INFO": 5, "CRITICAL": 400})
    assert policies["INFO"].retention_days == 5
    assert policies["INFO"].warm_days == 5  # was 7: cannot outlast the total
    assert policies["INFO"].hot_hours == DEFAULT_POLICIES["INFO"].hot_hours
    assert policies["CRITICAL"].retention_days == 400
    assert policies["DEBUG"] == DEFAULT_POLICIES["DEBUG"]  # untouched
    with pytest.raises(ValueError, match="unknown log level"):
        with_retention_days(dict(DEFAULT_POLICIES), {"LOUD": 3})


def test_the_command_line_form_is_checked_before_anything_runs() -> None:
    assert parse_retention(["info=30", "DEBUG=7"]) == {"INFO": 30, "DEBUG": 7}
    for bad in ("INFO", "INFO=0", "INFO=ten", "INFO=4000"):
        with pytest.raises(typer.BadParameter, match="LEVEL=DAYS"):
            parse_retention([bad])
    with pytest.raises(typer.BadParameter, match="unknown log level"):
        parse_retention(["LOUD=3"])
    result = CliRunner().invoke(app, ["enforce", "--retention", "LOUD=3"])
    assert result.exit_code == 2
    assert "unknown log level" in result.output
