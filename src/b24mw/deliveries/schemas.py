from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from b24mw.couriers.schemas import CourierId
from b24mw.kit.pagination import CursorKey
from b24mw.kit.schemas import MoneyOut, Phone, ReadModel, StrictInput, UtcOut
from b24mw.kit.types import BodyId
from b24mw.models.enums import OrderStatus
from b24mw.orders.schemas import CurrencyCode, LineIn, LineRead, Money

# The list's sort key, newest first, and the history's, oldest first: (time, id).
DELIVERY_CURSOR = CursorKey("deliveries", (datetime, int))
DELIVERY_EVENTS_CURSOR = CursorKey("delivery-events", (datetime, int))
ExternalId = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$", description="1C document id")
]


class DeliveryCreate(StrictInput):
    external_id_1c: ExternalId
    title: Annotated[str, Field(min_length=1, max_length=255)] | None = Field(
        default=None, description="defaults to the delivery number and the customer"
    )
    customer_name: Annotated[str, Field(min_length=1, max_length=255)]
    address: Annotated[str, Field(min_length=1, max_length=1000)]
    client_phone: Phone | None = None
    cod_amount: Money = Field(description="cash the courier collects on delivery")
    delivery_price: Money
    courier_id: CourierId
    items: Annotated[list[LineIn], Field(min_length=1, max_length=500)]
    total_amount: Money | None = Field(
        default=None, description="optional checksum: lines plus delivery price"
    )
    currency_code: CurrencyCode = "RUB"
    notes: Annotated[str, Field(max_length=4000)] | None = None
    deal_id_b24: BodyId | None = Field(
        default=None,
        description=(
            "Bitrix24 deal the delivery serves (known to /api/v1/crm/deals): the task is "
            "bound to it and the deal is closed when the delivery ends"
        ),
    )


class DeliveryRead(ReadModel):
    id: int
    external_id_1c: str
    task_id_b24: int | None
    deal_id_b24: int | None = Field(description="Bitrix24 deal the delivery serves")
    courier_id: str
    title: str
    customer_name: str
    address: str
    client_phone: str | None
    cod_amount: MoneyOut
    delivery_price: MoneyOut
    total_amount: MoneyOut
    currency_code: str
    status: OrderStatus
    notes: str | None
    items: list[LineRead] = Field(validation_alias="lines")
    created_at: UtcOut
    updated_at: UtcOut
