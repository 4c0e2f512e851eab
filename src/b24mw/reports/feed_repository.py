"""The KMP4 change feed's statements: orders of both kinds after a position
``(change_seq, kind, id)`` and below the horizon (``kmp4`` explains both)."""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    Text,
    cast,
    func,
    literal,
    null,
    select,
    text,
    tuple_,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from b24mw.reports.kmp4 import Position
from b24mw.reports.repository import FAR, TABLES, rfc3339_text
from b24mw.reports.schemas import ReportKind


def _feed_where(kind: ReportKind, position: Position, horizon: int) -> list[ColumnElement[bool]]:
    orders = TABLES[kind]
    # Row order is (change_seq, kind, id): at the cursor's own change_seq,
    # this kind continues after the cursor's id, or not at all, or wholly.
    if kind.value == position.kind:
        after_id = position.id
    else:
        after_id = -1 if kind.value > position.kind else FAR
    seq = literal(position.change_seq, BigInteger())
    return [
        # The plain bound lets the planner estimate the range from its
        # statistics (it cannot for the row comparison alone).
        orders.c.change_seq >= seq,
        tuple_(orders.c.change_seq, orders.c.id) > tuple_(seq, after_id),
        orders.c.change_seq < literal(horizon, BigInteger()),
    ]


def _feed_select(
    kind: ReportKind, position: Position, horizon: int, *, postgres: bool
) -> Select[Any]:
    """A kind's changed orders as text rows (the database writes the amount and
    the timestamps, as for the report)."""
    orders = TABLES[kind]
    external = orders.c.external_id_1c if kind is ReportKind.DELIVERY else null()
    amount = (
        cast(orders.c.total_amount, Text)
        if postgres
        else func.printf("%.2f", orders.c.total_amount)
    )
    return select(
        literal(kind.value).label("kind"),
        orders.c.id,
        orders.c.title,
        orders.c.customer_name,
        orders.c.status,
        amount.label("total_amount"),
        orders.c.currency_code,
        orders.c.courier_id,
        orders.c.notes,
        rfc3339_text(orders.c.created_at, postgres).label("created_at"),
        rfc3339_text(orders.c.updated_at, postgres).label("updated_at"),
        orders.c.version,
        external.label("external_id_1c"),
        orders.c.change_seq,
    ).where(*_feed_where(kind, position, horizon))


async def change_horizon(conn: AsyncConnection) -> int:
    """The feed's upper bound: on PostgreSQL the oldest transaction still
    running (every smaller id has finished, and a new one gets a larger id);
    on SQLite none (what is committed is all there is)."""
    if conn.dialect.name != "postgresql":
        return FAR
    value = await conn.scalar(text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"))
    return int(value)


def feed_statements(
    position: Position, horizon: int, limit: int, *, postgres: bool = True
) -> list[Select[Any]]:
    """Per kind, up to ``limit`` changed orders after ``position``, below
    ``horizon``, walking its ``(change_seq, id)`` index.  ``feed_page`` merges
    them here rather than in a sort by the database (which would compare the
    kind under the database's collation, slowly)."""
    statements = []
    for kind in ReportKind:
        part = _feed_select(kind, position, horizon, postgres=postgres)
        statements.append(part.order_by(TABLES[kind].c.change_seq, TABLES[kind].c.id).limit(limit))
    return statements


FEED_ORDER = itemgetter(13, 0, 1)  # change_seq, kind, id


async def feed_page(
    conn: AsyncConnection, position: Position, horizon: int, limit: int
) -> list[Row[Any]]:
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        # A guessed-large range must not make the planner compile (JIT).
        await conn.execute(text("SET LOCAL jit = off"))
    rows: list[Row[Any]] = []
    for stmt in feed_statements(position, horizon, limit, postgres=postgres):
        rows += (await conn.execute(stmt)).all()
    return sorted(rows, key=FEED_ORDER)[:limit]


async def feed_count(conn: AsyncConnection, position: Position, horizon: int) -> int:
    """Changed orders after ``position``, below ``horizon``, both kinds, in one
    round trip."""
    counts = [
        select(func.count())
        .select_from(TABLES[kind])
        .where(*_feed_where(kind, position, horizon))
        .scalar_subquery()
        for kind in ReportKind
    ]
    return int(await conn.scalar(select(counts[0] + counts[1])) or 0)
