from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from b24mw.couriers.schemas import CourierId
from b24mw.kit.pagination import CursorKey
from b24mw.kit.schemas import ReadModel, StrictInput, UtcOut
from b24mw.kit.types import INT64_LIMIT, BodyId, Quantity
from b24mw.models.enums import ItemQuality, ReturnSource, ReturnStatus

ReturnId = uuid.UUID
# The list's sort key, newest first: (created_at, id).
RETURN_CURSOR = CursorKey("returns", (datetime, uuid.UUID))
MAX_PHOTOS = 20


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _imei(value: str) -> str:
    if len(value) != 15 or not value.isascii() or not value.isdigit():
        raise ValueError("IMEI must be exactly 15 digits")
    if not luhn_ok(value):
        raise ValueError("IMEI check digit (Luhn) does not match")
    return value


def _file_id(value: Any) -> Any:
    # Bitrix24 hands file ids out as strings in form-encoded events and as
    # numbers in JSON; accept both, store and answer integers.
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return value


Imei = Annotated[str, AfterValidator(_imei)]
B24FileId = Annotated[
    int,
    Field(strict=True, gt=0, lt=INT64_LIMIT),
    BeforeValidator(_file_id),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": INT64_LIMIT},
                {"type": "string", "pattern": r"^\s*[0-9]{1,19}\s*$"},
            ],
            "description": "Bitrix24 disk file id: a positive integer or a numeric string;"
            " always answered as an integer",
        }
    ),
]
NonBlank64 = Annotated[str, Field(min_length=1, max_length=64)]


class ReturnLineCreate(StrictInput):
    sku: NonBlank64
    qty: Quantity
    quality: ItemQuality
    reason_code: Annotated[NonBlank64, Field(description="non-blank reason code")]
    reason_note: Annotated[str, Field(max_length=2000)] | None = None
    photos: Annotated[list[B24FileId], Field(max_length=MAX_PHOTOS)] = []
    imei: Annotated[Imei | None, Field(description="15 digits with a valid Luhn digit")] = None
    serial: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class ReturnCreate(StrictInput):
    source: ReturnSource
    courier_id: CourierId
    order_id_1c: NonBlank64 | None = None
    task_id_b24: Annotated[BodyId, Field(description="linked Bitrix24 task")] | None = None
    comment: Annotated[str, Field(max_length=4000)] | None = None
    items: Annotated[list[ReturnLineCreate], Field(min_length=1, max_length=200)]


class ReturnReplace(ReturnCreate):
    """PUT body: the whole return again (only while it is ``pending``)."""


class ReturnUpdate(StrictInput):
    """PATCH body: a decision (``status``) and/or the manager's annotations."""

    status: ReturnStatus | None = None
    comment: Annotated[str, Field(max_length=4000)] | None = None
    manager_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> ReturnUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one of status, comment, manager_id")
        if "status" in self.model_fields_set and self.status is None:
            raise ValueError("status cannot be null")
        return self


class ReturnLineRead(ReadModel):
    # Read from the ORM row (``id``, ``lines``) and from our own dumps (by name).
    model_config = ConfigDict(from_attributes=True, validate_by_name=True)

    line_id: int = Field(validation_alias="id")
    sku: str
    qty: int
    quality: ItemQuality
    reason_code: str
    reason_note: str | None
    photos: list[int]
    imei: str | None
    serial: str | None


class ReturnRead(ReadModel):
    model_config = ConfigDict(from_attributes=True, validate_by_name=True)

    id: ReturnId
    source: ReturnSource
    courier_id: str
    order_id_1c: str | None
    task_id_b24: int | None
    comment: str | None
    status: ReturnStatus
    manager_id: str | None
    items: list[ReturnLineRead] = Field(validation_alias="lines")
    created_at: UtcOut
    updated_at: UtcOut
