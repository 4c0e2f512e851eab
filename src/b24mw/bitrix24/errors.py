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


# An error envelope whose ``error`` is empty: classified by its description.
UNNAMED = "ERROR_WITHOUT_CODE"
# Words of such a description that mean "try again" (anything else is a refusal).
_TRANSIENT_WORDS = (
    "internal",
    "timeout",
    "timed out",
    "temporar",
    "try again",
    "try later",
    "deadlock",
    "lock wait",
    "overload",
    "unavailable",
)


def error_code(raw: Any) -> str:
    """The ``error`` of an envelope as a code; ``""`` when it is empty or falsy
    (``""``, ``null``, ``false``), as live portals answer inside a batch.  A
    numeric ``0`` is the code ``"0"`` the tasks methods use."""
    if raw is None or raw is False:
        return ""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return str(int(raw)) if float(raw).is_integer() else str(raw)
    return str(raw).strip()


def _unnamed_outcome(description: str, http_status: int | None) -> Outcome:
    """An error without a code: a 5xx/408/429 or a description that says so is
    worth repeating; otherwise the portal refused the call ("Not found",
    "Access denied"...) and would refuse it again."""
    if http_status is not None and (http_status >= 500 or http_status in (408, 429)):
        return Outcome.RETRYABLE
    text = description.lower()
    if any(word in text for word in _TRANSIENT_WORDS):
        return Outcome.RETRYABLE
    return Outcome.PERMANENT


def classify(
    code: str, description: str = "", *, http_status: int | None = None, body: Any = None
) -> CallError:
    """The outcome of a Bitrix24 error envelope (top level or one batch command)."""
    code = error_code(code)
    if not code:
        return CallError(
            outcome=_unnamed_outcome(description, http_status),
            code=UNNAMED,
            description=description,
            http_status=http_status,
        )
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


# Refusals for want of a scope or of rights (BITRIX24.md §4): the DLQ says so.
_RIGHTS_CODES = frozenset(
    {"ACCESS_DENIED", "INVALID_CREDENTIALS", "user_access_error", "ACCESS_ERROR"}
)
_SCOPES = (("tasks.", "task"), ("task.", "task"), ("user.", "user"), ("im.", "im"), ("crm.", "crm"))


def rights_hint(error: CallError, method: str) -> str | None:
    """What an operator must grant when Bitrix24 refused ``method`` for want of
    a scope or of rights; ``None`` for any other error."""
    if error.code == "insufficient_scope":
        scope = next((s for prefix, s in _SCOPES if method.startswith(prefix)), "?")
        return (
            f"refused for lack of rights: the webhook (or application) lacks the "
            f"'{scope}' scope {method} needs; grant it in Bitrix24, then replay the job"
        )
    if error.code in _RIGHTS_CODES:
        return (
            f"refused for lack of rights: the integration user may not call {method}; "
            "make it a Bitrix24 administrator (README: Connecting a real portal), "
            "then replay the job"
        )
    text = f"{error.code} {error.description}".lower()
    if "insufficient permissions" in text or "access denied" in text:
        return (
            f"refused for lack of rights: the integration user may not call {method} on "
            "this task (Bitrix24 answers so when the task was deleted, or when the user is "
            "not a Bitrix24 administrator and has no role on the task); check the task, "
            "make the user an administrator, then replay the job"
        )
    if method.startswith("tasks.task.") and (
        "1048582" in text or "action on the task is not allowed" in text
    ):
        return (
            f"refused: Bitrix24 does not allow {method} on this task to the integration "
            "user (the task is gone, its status does not allow it, or the user is not an "
            "administrator and has no role on the task)"
        )
    return None


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
    blocked): nothing was sent, so it costs no attempt (docs/outbound.md "Throttle")."""
