from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, exists, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.kit.staging import StagedRow, stage
from b24mw.models.base import table_of
from b24mw.models.couriers import Courier
from b24mw.models.returns import Return, ReturnLine

RETURNS = table_of(Return)
LINES = table_of(ReturnLine)
_RETURN_COLUMNS = [c.name for c in RETURNS.c]
# One round trip for "the courier exists" and the insert: a new return for an
# unknown courier inserts nothing.
_INSERT_FOR_COURIER = insert(RETURNS).from_select(
    _RETURN_COLUMNS,
    select(*[bindparam(name, type_=RETURNS.c[name].type) for name in _RETURN_COLUMNS]).where(
        exists().where(table_of(Courier).c.id == bindparam("courier_id"))
    ),
)


class ReturnRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, return_id: uuid.UUID) -> Return | None:
        return await self.session.get(Return, return_id)

    async def insert_for_courier(self, values: dict[str, Any]) -> bool:
        """Insert a new return (every column given) if its courier is
        registered; False (nothing written) if not."""
        result: Any = await self.session.execute(_INSERT_FOR_COURIER, values)
        return bool(result.rowcount == 1)

    def stage_lines(self, rows: list[dict[str, Any]]) -> list[StagedRow]:
        return [stage(self.session, LINES, row) for row in rows]

    async def courier_exists(self, courier_id: str) -> bool:
        # One column, no identity map: this runs on every create.
        stmt = select(Courier.id).where(Courier.id == courier_id)
        return (await self.session.execute(stmt)).first() is not None

    async def search(
        self,
        *,
        statuses: Sequence[str],
        courier_id: str | None,
        created_from: datetime | None,
        created_to: datetime | None,
        offset: int,
        limit: int,
    ) -> tuple[Sequence[Return], int]:
        # The filters line up with ix_returns_status_created and
        # ix_returns_courier_status_created (SPEC §4.5: no full scans).
        stmt = select(Return)
        if statuses:
            stmt = stmt.where(Return.status.in_(statuses))
        if courier_id is not None:
            stmt = stmt.where(Return.courier_id == courier_id)
        if created_from is not None:
            stmt = stmt.where(Return.created_at >= created_from)
        if created_to is not None:
            stmt = stmt.where(Return.created_at <= created_to)
        total = (
            await self.session.execute(select(func.count()).select_from(stmt.subquery()))
        ).scalar_one()
        page = stmt.order_by(Return.created_at.desc(), Return.id.desc()).offset(offset).limit(limit)
        rows = (await self.session.execute(page)).scalars().all()
        return rows, int(total)
