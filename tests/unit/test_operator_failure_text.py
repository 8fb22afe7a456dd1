"""A failed reconcile's text (status condition, Event, kopf's log) carries no secret."""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, ValidationError

from aitrading.operator.handlers import MAX_FAILURE_CHARS, failure_text


class _Spec(BaseModel):
    replicas: int


def test_a_validation_error_does_not_repeat_a_secret_it_was_given() -> None:
    with pytest.raises(ValidationError) as refused:
        _Spec.model_validate({"replicas": "password=hunter2-Xq9"})
    assert "hunter2-Xq9" in str(refused.value)  # pydantic repeats the input
    text = failure_text(refused.value)
    assert "hunter2-Xq9" not in text
    assert text.startswith("ValidationError: 1 validation error")


def test_an_api_error_keeps_its_reason_without_the_credentials_it_echoes() -> None:
    error = ApiException(status=422, reason="Unprocessable Entity")
    error.body = '{"message": "spec.url: Invalid value: \\"postgresql://app:dbpw1234@db/x\\""}'
    text = failure_text(error)
    assert "dbpw1234" not in text
    assert "(422)" in text
    assert "Unprocessable Entity" in text


def test_the_text_is_bounded() -> None:
    assert len(failure_text(RuntimeError("x" * 50_000))) == MAX_FAILURE_CHARS
