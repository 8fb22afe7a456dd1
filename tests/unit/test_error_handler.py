from __future__ import annotations

import asyncio
import types

import pytest

from aitrading.core.infrastructure.config_manager import ConfigError, ConfigProblem
from aitrading.core.infrastructure.error_handler import (
    ErrorCategory,
    ErrorDNA,
    classify,
    parameterise,
)

SOURCE = """
def fetch_price(symbol):
    return parse(symbol)

def parse(symbol):
    raise KeyError(symbol)

def other_caller(symbol):
    raise KeyError(symbol)
"""


def load_module(name: str, blank_lines: int = 0) -> types.ModuleType:
    """Compile SOURCE as an in-app module; blank lines move every statement down."""
    module = types.ModuleType(name)
    code = compile("\n" * blank_lines + SOURCE, f"<{name}>", "exec")
    exec(code, module.__dict__)  # noqa: S102 - test fixture code, constant
    return module


def raised(call: object, *args: object) -> BaseException:
    try:
        call(*args)  # type: ignore[operator]
    except BaseException as exc:
        return exc
    raise AssertionError("did not raise")


dna = ErrorDNA("data-bridge")


def test_same_error_from_a_moved_line_keeps_its_group() -> None:
    before = load_module("aitrading.pricing")
    after = load_module("aitrading.pricing", blank_lines=40)
    first = raised(before.fetch_price, "EURUSD")
    second = raised(after.fetch_price, "GBPUSD")
    assert first.__traceback__ is not None
    assert dna.fingerprint(first) == dna.fingerprint(second)


def test_same_type_from_another_call_site_is_another_group() -> None:
    module = load_module("aitrading.pricing")
    assert dna.fingerprint(raised(module.fetch_price, "X")) != dna.fingerprint(
        raised(module.other_caller, "X")
    )


def test_service_and_cause_chain_are_part_of_the_identity() -> None:
    module = load_module("aitrading.pricing")
    plain = raised(module.fetch_price, "X")
    assert ErrorDNA("trading-engine").fingerprint(plain) != dna.fingerprint(plain)

    def wrapped(cause: type[BaseException]) -> BaseException:
        def run() -> None:
            try:
                raise cause("inner")
            except BaseException as inner:
                raise RuntimeError("outer") from inner

        return raised(run)

    assert dna.fingerprint(wrapped(TimeoutError)) != dna.fingerprint(wrapped(ValueError))
    assert dna.signature(wrapped(TimeoutError))["causes"] == ["builtins.TimeoutError"]


def test_without_a_stack_the_parameterised_message_is_used() -> None:
    a = ValueError("order 1234 for 'EURUSD' rejected at 0x7f3a")
    b = ValueError("order 98 for 'USDJPY' rejected at 0x1")
    c = ValueError("account 98 is closed")
    assert dna.fingerprint(a) == dna.fingerprint(b)
    assert dna.fingerprint(a) != dna.fingerprint(c)
    assert parameterise("order 1234 for 'EURUSD'") == "order <num> for <str>"


def test_line_numbers_never_enter_the_signature() -> None:
    module = load_module("aitrading.pricing")
    signature = dna.signature(raised(module.fetch_price, "X"))
    assert signature["frames"][-2:] == ["aitrading.pricing:fetch_price", "aitrading.pricing:parse"]
    assert "message" not in signature


@pytest.mark.parametrize(
    ("exc", "category", "retryable"),
    [
        (ConnectionRefusedError("refused"), ErrorCategory.NETWORK, True),
        (TimeoutError(), ErrorCategory.NETWORK, True),
        (ValueError("bad price"), ErrorCategory.VALIDATION, False),
        (PermissionError("denied"), ErrorCategory.AUTH, False),
        (ConfigError([ConfigProblem("a", "b", "c")]), ErrorCategory.CONFIG, False),
        (KeyError("x"), ErrorCategory.INTERNAL, False),
    ],
)
def test_classification(exc: BaseException, category: ErrorCategory, retryable: bool) -> None:
    assert classify(exc) == (category, retryable)


def test_database_driver_errors_are_database_and_connection_ones_retryable() -> None:
    import asyncpg

    assert classify(asyncpg.exceptions.ConnectionDoesNotExistError("connection closed")) == (
        ErrorCategory.DATABASE,
        True,
    )
    assert classify(asyncpg.exceptions.UndefinedTableError("relation x does not exist")) == (
        ErrorCategory.DATABASE,
        False,
    )


def test_sample_and_message_are_redacted_and_hints_given() -> None:
    exc = raised(_fail_with_dsn)
    occurrence = dna.analyze(exc)
    assert "pa55word" not in occurrence.sample
    assert "pa55word" not in occurrence.message
    assert occurrence.category is ErrorCategory.NETWORK
    assert occurrence.recovery_hints


def _fail_with_dsn() -> None:
    raise ConnectionError("cannot reach postgresql://app:pa55word@db:5432/x")


def test_capture_without_a_store_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="no group store"):
        asyncio.run(dna.capture(ValueError("x")))
