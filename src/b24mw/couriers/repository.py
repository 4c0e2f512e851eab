from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.models.couriers import Courier


class CourierRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, courier_id: str) -> Courier | None:
        return await self.session.get(Courier, courier_id)

    async def by_b24_user(self, b24_user_id: int) -> Courier | None:
        stmt = select(Courier).where(Courier.b24_user_id == b24_user_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    def add(self, courier: Courier) -> None:
        self.session.add(courier)

    async def search(
        self,
        *,
        q: str | None,
        only_id: str | None,
        b24_user_id: int | None,
        is_active: bool | None,
        offset: int,
        limit: int,
    ) -> tuple[Sequence[Courier], int]:
        stmt = select(Courier)
        if q:
            # autoescape: the text is searched literally, "%" and "_" included.
            text = q.lower()
            stmt = stmt.where(
                or_(
                    func.lower(Courier.id).contains(text, autoescape=True),
                    func.lower(Courier.display_name).contains(text, autoescape=True),
                    Courier.phone.contains(q, autoescape=True),
                )
            )
        if only_id is not None:
            stmt = stmt.where(Courier.id == only_id)
        if b24_user_id is not None:
            stmt = stmt.where(Courier.b24_user_id == b24_user_id)
        if is_active is not None:
            stmt = stmt.where(Courier.is_active.is_(is_active))
        total = (
            await self.session.execute(select(func.count()).select_from(stmt.subquery()))
        ).scalar_one()
        rows = (
            await self.session.execute(stmt.order_by(Courier.id).offset(offset).limit(limit))
        ).scalars()
        return rows.all(), int(total)
