"""The order shape both kinds share: lines, the status change request and the
history view."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Protocol, Self

from pydantic import Field, model_validator

from b24mw.kit.errors import FieldError, ValidationFailed
from b24mw.kit.schemas import MoneyOut, ReadModel, StrictInput, UtcOut
from b24mw.kit.types import CENT, MONEY_MAX, Latitude, Longitude, Money, Quantity
from b24mw.models.enums import OrderStatus, TaskEventType

__all__ = ["CENT", "Money"]

CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217")]


@dataclass(frozen=True, slots=True)
class OrderFilter:
    """What a list of either kind is narrowed to; ``created_to`` is exclusive."""

    statuses: Sequence[str] = ()
    courier_id: str | None = None
    q: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


class LineIn(StrictInput):
    sku: Annotated[str, Field(min_length=1, max_length=64)]
    name: Annotated[str, Field(min_length=1, max_length=255)]
    qty: Quantity
    price: Money


class LineRead(ReadModel):
    line_no: int
    sku: str
    name: str
    qty: int
    price: MoneyOut


class StatusChange(StrictInput):
    status: OrderStatus
    note: Annotated[str, Field(max_length=2000)] | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None

    @model_validator(mode="after")
    def _both_coordinates(self) -> Self:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon go together: give both or neither")
        return self


class TaskEventRead(ReadModel):
    id: int
    ts: UtcOut
    type: TaskEventType
    status: str | None
    task_id_b24: int | None
    actor_id: str | None
    payload: dict[str, Any] = Field(validation_alias="payload_json")
    request_id: str | None


class _Line(Protocol):
    qty: int
    price: Decimal


def lines_total(lines: Iterable[_Line], *, plus: Decimal = Decimal("0")) -> Decimal:
    """The order total: the lines (and ``plus``, e.g. a delivery price), refused
    with a 422 naming ``items`` when it exceeds what ``numeric(12, 2)`` holds."""
    total = (sum((line.price * line.qty for line in lines), Decimal("0")) + plus).quantize(CENT)
    if total > MONEY_MAX:
        raise ValidationFailed(
            f"The order total {total:.2f} exceeds the largest amount, {MONEY_MAX}.",
            errors=[FieldError("items", f"the total of the lines must not exceed {MONEY_MAX}")],
        )
    return total


def check_supplied_total(supplied: Decimal | None, computed: Decimal) -> None:
    """A client-supplied total is a checksum: it must match what the lines say."""
    if supplied is not None and supplied.quantize(CENT) != computed:
        raise ValidationFailed(
            f"total_amount {supplied:.2f} does not match the lines ({computed:.2f}).",
            errors=[FieldError("total_amount", f"must equal the computed total {computed:.2f}")],
        )
