from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, or_, select

from b24mw.kit.listing import Keyset
from b24mw.kit.pagination import Page, PageRequest
from b24mw.kit.repository import ModelRepository
from b24mw.models.base import table_of
from b24mw.models.couriers import Courier

COURIERS = table_of(Courier)
KEYSET = Keyset((COURIERS.c.id,), descending=False)


class CourierRepository(ModelRepository[Courier]):
    __slots__ = ()
    model = Courier

    async def by_b24_user(self, b24_user_id: int) -> Courier | None:
        stmt = select(Courier).where(Courier.b24_user_id == b24_user_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def search(
        self,
        request: PageRequest,
        *,
        q: str | None,
        only_id: str | None,
        b24_user_id: int | None,
        is_active: bool | None,
    ) -> Page[dict[str, Any]]:
        branches = list_branches(q=q, only_id=only_id, b24_user_id=b24_user_id, is_active=is_active)
        return await self.page(request, KEYSET, branches)


def list_branches(
    *, q: str | None, only_id: str | None, b24_user_id: int | None, is_active: bool | None
) -> list[Select[Any]]:
    """The directory by id (its primary key).  ``q`` filters along it: the
    directory holds a few thousand rows at most, and a scan is its best plan."""
    stmt = select(COURIERS)
    if q:
        # autoescape: the text is searched literally, "%" and "_" included.
        text = q.lower()
        stmt = stmt.where(
            or_(
                func.lower(COURIERS.c.id).contains(text, autoescape=True),
                func.lower(COURIERS.c.display_name).contains(text, autoescape=True),
                COURIERS.c.phone.contains(q, autoescape=True),
            )
        )
    if only_id is not None:
        stmt = stmt.where(COURIERS.c.id == only_id)
    if b24_user_id is not None:
        stmt = stmt.where(COURIERS.c.b24_user_id == b24_user_id)
    if is_active is not None:
        stmt = stmt.where(COURIERS.c.is_active.is_(is_active))
    return [stmt]
