from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, exists, insert, select, text

from b24mw.kit.direct_reads import select_rows
from b24mw.kit.listing import (
    Children,
    Keyset,
    Listing,
    each_value,
    fetch_listed,
    given,
    one_branch_each,
    param,
)
from b24mw.kit.pagination import Page, PageRequest
from b24mw.kit.repository import ModelRepository
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

_LINE_FIELDS = tuple(c.name for c in LINES.c if c.name != "return_id")
# One return with its lines in one round trip, as plain rows (a read needs no
# ORM object).
_ONE = (
    select(RETURNS, *(LINES.c[name].label(f"line_{name}") for name in _LINE_FIELDS))
    .select_from(RETURNS.outerjoin(LINES, LINES.c.return_id == RETURNS.c.id))
    .where(RETURNS.c.id == bindparam("return_id"))
    .order_by(LINES.c.line_no)
)

# Newest first; the id breaks ties of created_at (and is the cursor's second half).
KEYSET = Keyset((RETURNS.c.created_at, RETURNS.c.id), descending=True)


def listing(
    *,
    statuses: Sequence[str],
    courier_id: str | None,
    created_from: datetime | None,
    created_to: datetime | None,
) -> tuple[Listing, dict[str, Any]]:
    """The list and its parameters; ``created_to`` is inclusive."""
    names, values = given(courier_id=courier_id, created_from=created_from, created_to=created_to)
    statuses_given = each_value("status", statuses)
    return _listing(names, len(statuses_given)), {**values, **statuses_given}


@cache
def _listing(names: frozenset[str], statuses: int) -> Listing:
    """The list as index walks (``kit.listing``): one per status asked for, on
    ``(status, created_at)`` or ``(courier_id, status, created_at)``; without
    a status, ``(created_at, id)`` or ``(courier_id, created_at, id)``."""
    stmt = select(RETURNS)
    if "courier_id" in names:
        stmt = stmt.where(RETURNS.c.courier_id == param(RETURNS.c.courier_id))
    if "created_from" in names:
        stmt = stmt.where(RETURNS.c.created_at >= param(RETURNS.c.created_at, "created_from"))
    if "created_to" in names:
        stmt = stmt.where(RETURNS.c.created_at <= param(RETURNS.c.created_at, "created_to"))
    branches = one_branch_each(stmt, RETURNS.c.status, statuses, "status")
    return Listing(KEYSET, branches, children=Children(LINES, "return_id"))


class ReturnRepository(ModelRepository[Return]):
    __slots__ = ()
    model = Return

    async def read(self, return_id: uuid.UUID) -> dict[str, Any] | None:
        """The return's columns and ``lines`` (each line's columns), or None."""
        rows = (await select_rows(self.session, _ONE, {"return_id": return_id})).mappings()
        if not rows:
            return None
        found = {c.name: rows[0][c.name] for c in RETURNS.c}
        found["lines"] = [
            {name: row[f"line_{name}"] for name in _LINE_FIELDS}
            for row in rows
            if row["line_id"] is not None
        ]
        return found

    async def insert_new(
        self, values: dict[str, Any], lines: list[dict[str, Any]]
    ) -> list[int] | None:
        """Insert a new return (every column given) and its lines if its
        courier is registered: the lines' ids in order, or None (nothing
        written) for an unknown courier."""
        if self.is_postgres:
            params = {"ret": json_row(RETURNS, values), "lines": json_rows(LINES, lines)}
            result = await self.session.execute(_PG_INSERT_WITH_LINES, params)
            # One INSERT takes its ids in row order (see kit.staging).
            ids = sorted(new_id for (new_id,) in result)
            return ids or None
        inserted: Any = await self.session.execute(_INSERT_FOR_COURIER, values)
        if inserted.rowcount != 1:
            return None
        staged = [stage(self.unit, LINES, row) for row in lines]
        await flush(self.unit)
        return [row.id for row in staged]

    async def courier_exists(self, courier_id: str) -> bool:
        # One column, no identity map: this runs on every create.
        stmt = select(Courier.id).where(Courier.id == courier_id)
        return (await self.session.execute(stmt)).first() is not None

    async def search(
        self, request: PageRequest, listed: tuple[Listing, dict[str, Any]]
    ) -> Page[dict[str, Any]]:
        """A page of returns, each with its ``lines``."""
        return await fetch_listed(self.session, request, *listed)
