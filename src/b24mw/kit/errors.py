"""The one error hierarchy.  Everything below the routes raises these; a single
place (``kit.problems``) turns them into ``application/problem+json``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str
    code: str | None = None

    def as_dict(self) -> dict[str, str]:
        out = {"field": self.field, "message": self.message}
        if self.code:
            out["code"] = self.code
        return out


class AppError(Exception):
    status: int = 500
    code: str = "internal"
    title: str = "Internal Server Error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
        code: str | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = list(errors)
        self.headers = dict(headers or {})
        if code:
            self.code = code
        self.extra = dict(extra or {})


class BadRequest(AppError):
    status = 400
    code = "validation.format"
    title = "Bad Request"


class MalformedBody(BadRequest):
    code = "payload.malformed"
    title = "Malformed request body"


class ValidationFailed(AppError):
    status = 422
    code = "validation.format"
    title = "Validation failed"


class TransitionRefused(AppError):
    status = 422
    code = "conflict.transition"
    title = "Transition not allowed"


class Unauthorized(AppError):
    status = 401
    code = "auth.invalid_token"
    title = "Unauthorized"

    def __init__(self, detail: str | None = None, **kwargs: object) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(AppError):
    status = 403
    code = "auth.forbidden"
    title = "Forbidden"


class NotFound(AppError):
    status = 404
    code = "not_found"
    title = "Not Found"


class MethodNotAllowed(AppError):
    status = 405
    code = "method_not_allowed"
    title = "Method Not Allowed"


class Conflict(AppError):
    status = 409
    code = "conflict"
    title = "Conflict"


class IdempotencyConflict(Conflict):
    code = "conflict.idempotency"
    title = "Idempotency key conflict"


class ConcurrentUpdate(Conflict):
    code = "conflict.concurrent_update"
    title = "The resource was changed by another request"


class PayloadTooLarge(AppError):
    status = 413
    code = "payload.too_large"
    title = "Payload Too Large"


class RateLimited(AppError):
    status = 429
    code = "rate_limit.exceeded"
    title = "Too Many Requests"


class ServiceUnavailable(AppError):
    status = 503
    code = "service.unavailable"
    title = "Service Unavailable"


class InternalError(AppError):
    status = 500
    code = "internal"
    title = "Internal Server Error"
