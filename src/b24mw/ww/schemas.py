from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from b24mw.couriers.schemas import CourierId
from b24mw.kit.pagination import CursorKey
from b24mw.kit.schemas import MoneyOut, Phone, ReadModel, StrictInput, UtcOut
from b24mw.kit.types import BodyId, Flag
from b24mw.models.enums import OrderOrigin, OrderStatus
from b24mw.orders.schemas import CurrencyCode, LineIn, LineRead, Money

# The list's sort key, newest first, and the history's, oldest first: (time, id).
ORDER_CURSOR = CursorKey("ww-orders", (datetime, int))
ORDER_EVENTS_CURSOR = CursorKey("ww-order-events", (datetime, int))
TaskId = Annotated[BodyId, Field(description="Bitrix24 task id")]
Lines = Annotated[list[LineIn], Field(min_length=1, max_length=500)]


class OrderCreate(StrictInput):
    task_id_b24: TaskId | None = None
    courier_id: CourierId | None = Field(
        default=None, description="a courier creating an order may omit it (it is them)"
    )
    title: Annotated[str, Field(min_length=1, max_length=255)]
    customer_name: Annotated[str, Field(min_length=1, max_length=255)]
    client_phone: Phone | None = None
    items: Lines
    total_amount: Money | None = Field(
        default=None, description="optional checksum: must equal the sum of the lines"
    )
    currency_code: CurrencyCode = "RUB"
    notes: Annotated[str, Field(max_length=4000)] | None = None


class OrderUpdate(StrictInput):
    """Lines and notes of a NEW order; ``items`` replaces the whole list."""

    items: Lines | None = None
    total_amount: Money | None = None
    notes: Annotated[str, Field(max_length=4000)] | None = None


class OrderAssign(StrictInput):
    courier_id: CourierId | None = Field(description="the new courier, or null to unassign")
    decline: Flag = Field(
        default=False, description="the current courier refused the order (recorded)"
    )


DEAL_DOC = "Bitrix24 deal it serves (the task's UF_CRM_TASK D_<id>); its mirror: /api/v1/crm/deals"


class OrderRead(ReadModel):
    id: int
    task_id_b24: int | None
    deal_id_b24: int | None = Field(description=DEAL_DOC)
    courier_id: str | None
    title: str
    customer_name: str
    client_phone: str | None
    status: OrderStatus
    items: list[LineRead] = Field(validation_alias="lines")
    total_amount: MoneyOut
    currency_code: str
    notes: str | None
    origin: OrderOrigin
    created_at: UtcOut
    updated_at: UtcOut
