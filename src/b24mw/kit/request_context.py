"""Request id, per-request log line, metrics and the last-resort 500.

A pure ASGI middleware (outermost), so the ``X-Request-Id`` header is on every
response: errors, 404s and failures the framework never saw included.
"""

from __future__ import annotations

import contextvars
import time
import uuid
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from b24mw.kit.routes import route_template

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "b24mw_request_id", default=None
)
REQUEST_ID_HEADER = "x-request-id"
log = structlog.get_logger("b24mw.http")


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None) -> contextvars.Token[str | None]:
    """Bind a request id outside HTTP (worker jobs carry the id of their origin)."""
    structlog.contextvars.bind_contextvars(request_id=value)
    return _request_id.set(value)


def is_valid_request_id(value: str) -> bool:
    """1–128 visible ASCII characters (0x21–0x7E), as README "HTTP conventions" fixes."""
    return 1 <= len(value) <= 128 and all(0x21 <= ord(ch) <= 0x7E for ch in value)


def new_request_id() -> str:
    return str(uuid.uuid4())


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Imported here: problems imports this module for current_request_id.
        from b24mw.kit import metrics
        from b24mw.kit.errors import AppError, BadRequest, FieldError, InternalError
        from b24mw.kit.problems import database_unavailable, problem_response

        started = time.perf_counter()
        raw = _header(scope, REQUEST_ID_HEADER.encode())
        supplied = raw.decode("latin-1") if raw is not None else None
        bad_header = supplied is not None and not is_valid_request_id(supplied)
        request_id = new_request_id() if supplied is None or bad_header else supplied
        token = _request_id.set(request_id)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        status_holder: dict[str, Any] = {"status": 500, "started": False}
        rid_header = (REQUEST_ID_HEADER.encode(), request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                headers = [h for h in message.get("headers", []) if h[0] != rid_header[0]]
                headers.append(rid_header)
                message = {**message, "headers": headers}
            await send(message)

        try:
            if bad_header:
                error: AppError = BadRequest(
                    "X-Request-Id must be 1-128 visible ASCII characters.",
                    errors=[FieldError("X-Request-Id", "1-128 visible ASCII characters")],
                    code="validation.format",
                )
                await problem_response(error, request_id)(scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        except Exception as exc:
            unavailable = database_unavailable(exc)
            if unavailable is None:
                log.exception("unhandled_error", path=scope.get("path"))
            else:
                log.warning("database_unavailable", path=scope.get("path"), error=str(exc))
            if not status_holder["started"]:
                error = unavailable or InternalError(
                    "An unexpected error occurred; quote the request id."
                )
                await problem_response(error, request_id)(scope, receive, send_with_id)
        finally:
            duration = time.perf_counter() - started
            template = route_template(scope)
            status = status_holder["status"]
            metrics.observe_request(scope["method"], template, status, duration)
            log.info(
                "request",
                method=scope["method"],
                path=scope.get("path"),
                route=template,
                status=status,
                duration_ms=round(duration * 1000, 2),
            )
            _request_id.reset(token)
