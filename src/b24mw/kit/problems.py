"""Render the error hierarchy as RFC 9457 ``application/problem+json``.

Used by the FastAPI exception handlers and by the pure-ASGI middlewares (which
run before FastAPI has a request object), so every error looks the same.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from b24mw.kit.errors import (
    AppError,
    FieldError,
    MalformedBody,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    ValidationFailed,
)
from b24mw.kit.request_scope import current_request_id, mark_not_stored

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://b24mw.dev/problems/"


def problem_body(error: AppError, request_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": TYPE_BASE + error.code.replace(".", "/"),
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "code": error.code,
        "errors": [e.as_dict() for e in error.errors],
        "request_id": request_id,
    }
    body.update(error.extra)
    return body


def problem_bytes(error: AppError, request_id: str | None) -> bytes:
    # "replace": a field name may echo a client's unpaired surrogate (a JSON
    # key), which UTF-8 cannot encode; the answer must still go out.
    return json.dumps(problem_body(error, request_id), ensure_ascii=False).encode(
        "utf-8", "replace"
    )


def problem_response(error: AppError, request_id: str | None = None) -> Response:
    rid = request_id or current_request_id()
    return Response(
        content=problem_bytes(error, rid),
        status_code=error.status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=error.headers,
    )


def _loc_to_field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    # FastAPI prefixes the source ("body", "query", ...); keep it for
    # query/path/header so a client can tell where to look, drop it for body.
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_error_from(exc: RequestValidationError) -> AppError:
    field_errors: list[FieldError] = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            reason = (err.get("ctx") or {}).get("error")
            return MalformedBody(
                f"The request body is not valid JSON: {reason}."
                if reason
                else "The request body is not valid JSON."
            )
        kind = err.get("type", "")
        code = "validation.required" if kind == "missing" else "validation.format"
        field_errors.append(FieldError(_loc_to_field(err.get("loc", ())), err.get("msg", ""), code))
    all_missing = all(fe.code == "validation.required" for fe in field_errors)
    return ValidationFailed(
        f"{len(field_errors)} field(s) failed validation.",
        errors=field_errors,
        code="validation.required" if field_errors and all_missing else "validation.format",
    )


# SQLSTATE classes that say "the server cannot serve you now", not "your
# statement is wrong": 08 connection exception, 53 insufficient resources
# (too many connections), 57 operator intervention (shutting down, starting
# up: asyncpg's CannotConnectNowError, AdminShutdownError, ...).
UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57")


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a driver error, wrapped by SQLAlchemy or not."""
    seen: BaseException | None = exc
    for _ in range(4):  # the error, SQLAlchemy's .orig, the driver's cause
        if seen is None:
            return None
        code = getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None)
        if isinstance(code, str):
            return code
        seen = getattr(seen, "orig", None) or seen.__cause__
    return None


def is_database_unavailable(exc: BaseException) -> bool:
    """A lost, refused or not-now database connection (or an exhausted pool):
    worth retrying later, unlike an error in the statement itself."""
    if isinstance(exc, DBAPIError) and (
        exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
    ):
        return True
    # PoolTimeout: every connection busy past pool_timeout (overload).
    if isinstance(exc, ConnectionError | TimeoutError | PoolTimeout):
        return True
    code = _sqlstate(exc)
    return code is not None and code.startswith(UNAVAILABLE_SQLSTATE_CLASSES)


def database_unavailable(exc: BaseException) -> AppError | None:
    """A lost or refused database connection is a 503, not a 500: the request
    may be retried, and the pool has already thrown the dead connections away."""
    if is_database_unavailable(exc):
        return ServiceUnavailable(
            "The database is unreachable; retry shortly.",
            code="dependency.database_unavailable",
            headers={"Retry-After": "1"},
        )
    return None


def install_problem_handlers(app: FastAPI) -> None:
    async def on_app_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AppError)
        return problem_response(exc)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        mark_not_stored(request.scope.setdefault("state", {}))
        return problem_response(validation_error_from(exc))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        mark_not_stored(request.scope.setdefault("state", {}))
        error: AppError
        if exc.status_code == 404:
            error = NotFound(f"No route or resource at {request.url.path}.")
        elif exc.status_code == 413:
            error = PayloadTooLarge("The request body is too large.")
        elif exc.status_code == 405:
            error = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}.")
            error.headers.update(exc.headers or {})
        else:
            error = AppError(str(exc.detail))
            error.status = exc.status_code
            error.title = str(exc.detail)
            error.code = f"http.{exc.status_code}"
        return problem_response(error)

    async def on_database_error(request: Request, exc: Exception) -> Response:
        error = database_unavailable(exc)
        if error is None:
            raise exc
        return problem_response(error)

    app.add_exception_handler(AppError, on_app_error)
    app.add_exception_handler(DBAPIError, on_database_error)
    app.add_exception_handler(PoolTimeout, on_database_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
