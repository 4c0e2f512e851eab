from __future__ import annotations

from typing import Annotated

from pydantic import Field

from b24mw.kit.pagination import CursorKey
from b24mw.kit.schemas import Phone, ReadModel, StrictInput, UtcOut
from b24mw.kit.types import INT64_LIMIT, Flag

# The directory is listed by id.
COURIER_CURSOR = CursorKey("couriers", (str,))
CourierId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:@-]+$")]
B24UserId = Annotated[
    int, Field(strict=True, gt=0, lt=INT64_LIMIT, description="Bitrix24 user id (RESPONSIBLE_ID)")
]


class CourierBase(StrictInput):
    display_name: Annotated[str, Field(min_length=1, max_length=200)]
    phone: Phone | None = None
    is_active: Flag = True
    b24_user_id: B24UserId | None = None


class CourierCreate(CourierBase):
    id: CourierId


class CourierUpdate(StrictInput):
    display_name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    phone: Phone | None = None
    is_active: Flag | None = None
    b24_user_id: B24UserId | None = None


class CourierRead(ReadModel):
    id: str
    display_name: str
    phone: str | None
    is_active: bool
    b24_user_id: int | None
    created_at: UtcOut
    updated_at: UtcOut
