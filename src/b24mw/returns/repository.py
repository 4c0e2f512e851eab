from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, exists, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.kit.staging import flush, json_row, json_rows, stage
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

_LINE_COLUMNS = ", ".join(f'"{c.name}"' for c in LINES.c if c.name != "id")
# PostgreSQL: the same check, the return and its lines in one statement; the
# lines join the inserted return, so an unknown courier inserts nothing.
_PG_INSERT_WITH_LINES = text(
    f"""
WITH ret AS (
    INSERT INTO returns ({", ".join(f'"{n}"' for n in _RETURN_COLUMNS)})
    SELECT {", ".join(f'r."{n}"' for n in _RETURN_COLUMNS)}
    FROM json_populate_record(NULL::returns, CAST(:ret AS json)) AS r
    WHERE EXISTS (SELECT 1 FROM couriers WHERE couriers.id = r.courier_id)
    RETURNING id
), lines AS (
    INSERT INTO return_lines ({_LINE_COLUMNS})
    SELECT {", ".join(f'l."{c.name}"' for c in LINES.c if c.name != "id")}
    FROM json_populate_recordset(NULL::return_lines, CAST(:lines AS json))
        WITH ORDINALITY AS l
    CROSS JOIN ret
    ORDER BY l.ordinality
    RETURNING id
)
SELECT id FROM lines
"""
)


class ReturnRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, return_id: uuid.UUID) -> Return | None:
        return await self.session.get(Return, return_id)

    async def insert_new(
        self, values: dict[str, Any], lines: list[dict[str, Any]]
    ) -> list[int] | None:
        """Insert a new return (every column given) and its lines if its
        courier is registered: the lines' ids in order, or None (nothing
        written) for an unknown courier."""
        if self.session.get_bind().dialect.name == "postgresql":
            params = {"ret": json_row(RETURNS, values), "lines": json_rows(LINES, lines)}
            result = await self.session.execute(_PG_INSERT_WITH_LINES, params)
            # One INSERT takes its ids in row order (see kit.staging).
            ids = sorted(new_id for (new_id,) in result)
            return ids or None
        inserted: Any = await self.session.execute(_INSERT_FOR_COURIER, values)
        if inserted.rowcount != 1:
            return None
        staged = [stage(self.session, LINES, row) for row in lines]
        await flush(self.session)
        return [row.id for row in staged]

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
