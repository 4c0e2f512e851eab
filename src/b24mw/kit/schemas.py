"""Schema building blocks shared by every resource."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, field_validator

from b24mw.kit.phone import normalize_phone
from b24mw.kit.types import storable

# Money travels as a decimal string with two places (README "HTTP conventions").
MoneyOut = Annotated[Decimal, PlainSerializer(lambda d: f"{d:.2f}", return_type=str)]


def _utc_text(value: datetime) -> str:
    # isoformat: several times faster than strftime, and lists write 40 a
    # page; its first 26 characters are the time to the microsecond, the
    # offset (if any) follows and is always zero here.
    return value.isoformat(timespec="microseconds")[:26] + "Z"


# RFC 3339 UTC with "Z" (the values are UTC: UtcDateTime, utcnow).
UtcOut = Annotated[datetime, PlainSerializer(_utc_text, return_type=str)]


def _phone(value: Any) -> Any:
    return normalize_phone(value) if isinstance(value, str) else value


# Accepts +7XXXXXXXXXX, 8XXXXXXXXXX and formatted input; stores +7XXXXXXXXXX.
Phone = Annotated[str, BeforeValidator(_phone)]


class StrictInput(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped, and
    no text field takes what the database cannot store (``kit.types``)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        # One rule for every string of every body, nested models included
        # (they are StrictInput too); the error names the field.
        if isinstance(value, str):
            storable(value)
        return value


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class FieldProblem(BaseModel):
    field: str
    message: str
    code: str | None = None


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of this API is shaped."""

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(examples=["validation.format"])
    errors: list[FieldProblem] = []
    request_id: str | None = None


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "Malformed request, bad header or missing Idempotency-Key",
        401: "Missing or invalid bearer token",
        403: "The role may not do this",
        404: "Not found",
        405: "Method not allowed",
        409: "Conflict (duplicate, idempotency key reuse or in flight, concurrent update)",
        413: "Request body over the limit",
        422: "Validation failed; errors[] names every offending field",
        500: "Unexpected error (no internals disclosed)",
        503: "Dependency unavailable",
    }
    return {
        s: {
            "model": Problem,
            "description": descriptions.get(s, "Error"),
            "content": {"application/problem+json": {}},
        }
        for s in statuses
    }


COMMON_ERRORS = problem_responses(400, 401, 403, 404, 405, 409, 413, 422, 500, 503)


def answer(
    model: BaseModel, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """``model`` as the JSON answer, serialized once.  Returned as a model,
    FastAPI would dump it, validate the dump against ``response_model`` and
    dump it again: a third of a list's CPU.  The route keeps its
    ``response_model`` for the OpenAPI document."""
    return Response(
        model.model_dump_json().encode(),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )
