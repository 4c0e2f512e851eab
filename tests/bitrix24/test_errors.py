"""BITRIX24.md §4 as a table: what each answer makes the engine do."""

from __future__ import annotations

import pytest

from b24mw.bitrix24.errors import UNNAMED, Outcome, classify, error_code


@pytest.mark.parametrize(
    ("code", "status", "outcome", "may_have_run"),
    [
        ("QUERY_LIMIT_EXCEEDED", 503, Outcome.THROTTLED, False),
        ("OPERATION_TIME_LIMIT", 429, Outcome.OPERATING_LIMITED, False),
        ("OVERLOAD_LIMIT", 503, Outcome.RETRYABLE, False),
        ("INTERNAL_SERVER_ERROR", 500, Outcome.RETRYABLE, True),
        ("ERROR_UNEXPECTED_ANSWER", 500, Outcome.RETRYABLE, True),
        ("expired_token", 401, Outcome.RETRYABLE, True),
        ("NO_AUTH_FOUND", 401, Outcome.PERMANENT, True),
        ("INVALID_CREDENTIALS", 401, Outcome.PERMANENT, True),
        ("ACCESS_DENIED", 403, Outcome.PERMANENT, True),
        ("insufficient_scope", 403, Outcome.PERMANENT, True),
        ("ERROR_METHOD_NOT_FOUND", 404, Outcome.PERMANENT, True),
        ("ERROR_CORE", 400, Outcome.PERMANENT, True),
        ("INVALID_REQUEST", 400, Outcome.PERMANENT, True),
        ("NOT_FOUND", 404, Outcome.PERMANENT, True),
        ("0", 400, Outcome.PERMANENT, True),
        ("100", 400, Outcome.PERMANENT, True),
        ("SOMETHING_NEW", 502, Outcome.RETRYABLE, True),
        ("SOMETHING_NEW", 400, Outcome.PERMANENT, True),
    ],
)
def test_error_table(code: str, status: int, outcome: Outcome, may_have_run: bool) -> None:
    error = classify(code, "text", http_status=status)
    assert error.outcome is outcome
    assert error.may_have_run is may_have_run


def test_operating_reset_is_read_from_the_time_block() -> None:
    body = {"error": "OPERATION_TIME_LIMIT", "time": {"operating_reset_at": 1_800_000_000}}
    error = classify("OPERATION_TIME_LIMIT", "", http_status=429, body=body)
    assert error.reset_at == 1_800_000_001.0  # the named second is waited out


def test_an_unknown_code_inside_a_batch_is_final() -> None:
    # The command ran and the portal refused its input: the same input fails again.
    assert classify("1048582", "No access").outcome is Outcome.PERMANENT


@pytest.mark.parametrize("raw", ["", None, False, "   "])
def test_an_error_without_a_code_is_judged_by_its_description(raw: object) -> None:
    # Recorded from live portals inside batch: {"error": "", "error_description": "Not found"}.
    error = classify(raw, "Not found")  # type: ignore[arg-type]
    assert (error.code, error.description) == (UNNAMED, "Not found")
    assert error.outcome is Outcome.PERMANENT
    assert "Not found" in error.text


@pytest.mark.parametrize(
    ("description", "status", "outcome"),
    [
        ("Access denied", None, Outcome.PERMANENT),
        ("Not found", 400, Outcome.PERMANENT),
        ("Internal error", None, Outcome.RETRYABLE),
        ("Lock wait timeout exceeded", None, Outcome.RETRYABLE),
        ("Not found", 502, Outcome.RETRYABLE),
        ("", 429, Outcome.RETRYABLE),
        ("", 400, Outcome.PERMANENT),
    ],
)
def test_codeless_errors_by_description_and_status(
    description: str, status: int | None, outcome: Outcome
) -> None:
    assert classify("", description, http_status=status).outcome is outcome


def test_a_numeric_zero_is_the_tasks_code_0() -> None:
    assert error_code(0) == "0"
    assert classify(0, "wrong task id").code == "0"  # type: ignore[arg-type]
