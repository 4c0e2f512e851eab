"""What one request carries besides its body: its id (a context variable, so
log lines and stored rows can quote it) and the keys this project keeps in the
ASGI scope's ``state``.

A leaf module: the middlewares, the problem renderer and the unit of work all
read it, and it imports none of them — that is what keeps ``kit/`` free of
import cycles.
"""

from __future__ import annotations

import contextvars
import uuid
from typing import Any

import structlog

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "b24mw_request_id", default=None
)

# scope["state"] keys.
REQUEST_ID = "request_id"
# The request's unit of work (kit.uow): the route's write session is its session.
UNIT_OF_WORK = "b24mw.unit_of_work"
# The request's statement reads (kit.db.StatementReads), closed by its route.
STATEMENT_READS = "b24mw.statement_reads"
# Set where the handler never ran (request validation, no such route): the
# answer is not stored under the request's Idempotency-Key, so a corrected
# retry under the same key is treated as new, not as a mismatch.
NOT_STORED_FLAG = "idempotency_skip"


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None) -> contextvars.Token[str | None]:
    """Bind the id for this context and its log lines (worker jobs carry the
    id of their origin); undo with ``reset_request_id``."""
    structlog.contextvars.bind_contextvars(request_id=value)
    return _request_id.set(value)


def reset_request_id(token: contextvars.Token[str | None]) -> None:
    _request_id.reset(token)


def is_valid_request_id(value: str) -> bool:
    """1–128 visible ASCII characters (0x21–0x7E), as README "HTTP conventions" fixes."""
    return 1 <= len(value) <= 128 and all(0x21 <= ord(ch) <= 0x7E for ch in value)


def new_request_id() -> str:
    return str(uuid.uuid4())


def mark_not_stored(scope_state: dict[str, Any]) -> None:
    """The handler never ran: keep this answer out of the idempotency store."""
    scope_state[NOT_STORED_FLAG] = True


def is_not_stored(scope_state: dict[str, Any]) -> bool:
    return bool(scope_state.get(NOT_STORED_FLAG, False))
