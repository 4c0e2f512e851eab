"""Bitrix24's error table (BITRIX24.md §4) turned into typed outcomes.

Every failed exchange becomes a ``CallError`` with an ``Outcome`` that tells the
caller what to do: retry on the schedule, slow every worker down, block one
method until its operating time resets, or give up at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from b24mw.kit.errors import AppError


class Outcome(StrEnum):
    RETRYABLE = "retryable"
    # QUERY_LIMIT_EXCEEDED: the request never ran; the shared rate must drop.
    THROTTLED = "throttled"
    # OPERATION_TIME_LIMIT: only this method is blocked until operating_reset_at.
    OPERATING_LIMITED = "operating_limited"
    PERMANENT = "permanent"


# Codes whose request certainly did not run: retrying a write cannot duplicate it.
_NOT_RUN = frozenset({"QUERY_LIMIT_EXCEEDED", "OPERATION_TIME_LIMIT", "OVERLOAD_LIMIT"})
_RETRYABLE_CODES = frozenset(
    {
        "INTERNAL_SERVER_ERROR",
        "ERROR_UNEXPECTED_ANSWER",
        "OVERLOAD_LIMIT",
        # OAuth: the client renews the token and repeats the call once; if the
        # token is refused again, a later attempt gets a newer one.
        "expired_token",
        "invalid_token",
        "HTTP_TIMEOUT",
        "NETWORK_ERROR",
        "HTML_RESPONSE",
        "BAD_RESPONSE",
        "MISSING_RESULT",
    }
)
_PERMANENT_CODES = frozenset(
    {
        "NO_AUTH_FOUND",
        "INVALID_CREDENTIALS",
        "ACCESS_DENIED",
        "insufficient_scope",
        "ERROR_METHOD_NOT_FOUND",
        "ERROR_CORE",
        "INVALID_REQUEST",
        "NOT_FOUND",
        "ERROR_BATCH_LENGTH_EXCEEDED",
        "ERROR_BATCH_METHOD_NOT_ALLOWED",
        "TOO_MANY_REDIRECTS",
        "0",
        "100",
    }
)


@dataclass(frozen=True, slots=True)
class CallError:
    outcome: Outcome
    code: str
    description: str = ""
    http_status: int | None = None
    # OPERATION_TIME_LIMIT: unix time at which the method is usable again.
    reset_at: float | None = None
    # False when we know the request never ran (connect error, limits).
    may_have_run: bool = True

    @property
    def text(self) -> str:
        status = f" (HTTP {self.http_status})" if self.http_status else ""
        detail = f": {self.description}" if self.description else ""
        return f"{self.code}{status}{detail}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "code": self.code,
            "description": self.description,
            "http_status": self.http_status,
        }


def _reset_at(body: Any) -> float | None:
    if not isinstance(body, dict):
        return None
    time_block = body.get("time")
    if isinstance(time_block, dict):
        value = time_block.get("operating_reset_at")
        if isinstance(value, int | float) and not isinstance(value, bool):
            # Whole seconds: wait out the second it names, or the retry lands a
            # moment early and burns an attempt on another 429.
            return float(value) + 1.0
    return None


def classify(
    code: str, description: str = "", *, http_status: int | None = None, body: Any = None
) -> CallError:
    """The outcome of a Bitrix24 error envelope (top level or one batch command)."""
    if code == "QUERY_LIMIT_EXCEEDED":
        outcome = Outcome.THROTTLED
    elif code == "OPERATION_TIME_LIMIT":
        outcome = Outcome.OPERATING_LIMITED
    elif code in _RETRYABLE_CODES:
        outcome = Outcome.RETRYABLE
    elif code in _PERMANENT_CODES:
        outcome = Outcome.PERMANENT
    elif http_status is not None and (http_status >= 500 or http_status in (408, 429)):
        outcome = Outcome.RETRYABLE
    else:
        # An unknown code on a 4xx, or inside a batch: the portal ran the command and
        # refused it; repeating the same input would be refused again.
        outcome = Outcome.PERMANENT
    return CallError(
        outcome=outcome,
        code=code,
        description=description,
        http_status=http_status,
        reset_at=_reset_at(body),
        may_have_run=code not in _NOT_RUN,
    )


def transport_error(code: str, description: str, *, may_have_run: bool) -> CallError:
    """Timeouts, network errors and bodies that are not a Bitrix24 envelope."""
    return CallError(Outcome.RETRYABLE, code, description, may_have_run=may_have_run)


class Bitrix24Error(AppError):
    """A Bitrix24 call failed for good (raised by the direct-call gateway)."""

    status = 502
    code = "integration.b24_error"
    title = "Bitrix24 refused the call"

    def __init__(self, error: CallError, method: str) -> None:
        super().__init__(f"Bitrix24 {method}: {error.text}")
        self.error = error
        self.method = method


class Bitrix24Unavailable(Bitrix24Error):
    """Bitrix24 is throttling, blocked or unreachable: try again later."""

    status = 503
    code = "integration.b24_unavailable"
    title = "Bitrix24 unavailable"


class HeldBack(Bitrix24Unavailable):
    """Our own limiter held the call back (no slot in time, or its method is
    blocked): nothing was sent, so it costs no attempt (SPEC §6)."""
