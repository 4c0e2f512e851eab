"""Request id, per-request log line, metrics and the last-resort 500.

A pure ASGI middleware (outermost), so the ``X-Request-Id`` header is on every
response: errors, 404s and failures the framework never saw included.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from b24mw.kit import metrics
from b24mw.kit.errors import AppError, BadRequest, FieldError, InternalError
from b24mw.kit.problems import database_unavailable, problem_response
from b24mw.kit.request_scope import (
    REQUEST_ID,
    current_request_id,
    is_valid_request_id,
    new_request_id,
    reset_request_id,
    set_request_id,
)
from b24mw.kit.routes import route_template

# The request id's helpers live in kit.request_scope (a leaf module); they are
# re-exported here, where the jobs and pollers have always imported them.
__all__ = [
    "REQUEST_ID_HEADER",
    "RequestContextMiddleware",
    "current_request_id",
    "is_valid_request_id",
    "new_request_id",
    "set_request_id",
]

REQUEST_ID_HEADER = "x-request-id"
log = structlog.get_logger("b24mw.http")


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
        started = time.perf_counter()
        raw = _header(scope, REQUEST_ID_HEADER.encode())
        supplied = raw.decode("latin-1") if raw is not None else None
        bad_header = supplied is not None and not is_valid_request_id(supplied)
        request_id = new_request_id() if supplied is None or bad_header else supplied
        structlog.contextvars.clear_contextvars()
        token = set_request_id(request_id)
        scope.setdefault("state", {})[REQUEST_ID] = request_id
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
            reset_request_id(token)
