"""Bitrix24 error envelopes, with the codes and HTTP statuses the real portal uses."""

from __future__ import annotations

from typing import Any


class B24Error(Exception):
    """An error answered as `{"error", "error_description"}` with a Bitrix24 status."""

    def __init__(
        self,
        code: str,
        description: str,
        status: int = 400,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.status = status
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "error_description": self.description, **self.extra}

    def short(self) -> dict[str, str]:
        """The form used inside `batch` `result_error` entries."""
        return {"error": self.code, "error_description": self.description}


def method_not_found() -> B24Error:
    return B24Error("ERROR_METHOD_NOT_FOUND", "Method not found!", 404)


def invalid_credentials() -> B24Error:
    return B24Error("INVALID_CREDENTIALS", "Invalid request credentials", 401)


def no_auth_found() -> B24Error:
    return B24Error("NO_AUTH_FOUND", "Wrong authorization data", 401)


def query_limit_exceeded() -> B24Error:
    return B24Error("QUERY_LIMIT_EXCEEDED", "Too many requests", 503)


def operation_time_limit(extra: dict[str, Any] | None = None) -> B24Error:
    return B24Error(
        "OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit.", 429, extra
    )


def internal_server_error() -> B24Error:
    return B24Error("INTERNAL_SERVER_ERROR", "Internal server error", 500)


def invalid_request(description: str) -> B24Error:
    return B24Error("INVALID_REQUEST", description, 400)


def core_error(description: str) -> B24Error:
    # The tasks module appends an HTML line break to its messages.
    return B24Error("ERROR_CORE", f"{description}<br>", 400)


def internal_arg_error(description: str) -> B24Error:
    """REST argument binding errors: code "100", "(internal error)" suffix."""
    return B24Error("100", f"{description} (internal error)", 400)


def wrong_task_id() -> B24Error:
    return B24Error("0", "wrong task id", 400)


# The code each status method's page shows for a refused action: the
# TasksException code TE_ACTION_NOT_ALLOWED | TE_ACCESS_DENIED (0x100006), or
# "0" where the page (start, complete) shows the message without its code.
STATUS_REFUSAL_CODES = {
    "start": "0",
    "complete": "0",
    "pause": "1048582",
    "defer": "1048582",
    "renew": "1048582",
    "approve": "1048582",
    "disapprove": "1048582",
}


def action_not_allowed(description: str = "Action on the task is not allowed") -> B24Error:
    return B24Error("0", description, 400)


def status_refused(action: str) -> B24Error:
    """A status action the task's status or the caller's rights do not allow
    (also a task that does not exist or that the caller cannot see)."""
    return B24Error(STATUS_REFUSAL_CODES[action], "Action on the task is not allowed", 400)
