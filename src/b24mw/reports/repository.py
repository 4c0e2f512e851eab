"""Every statement of the reports: the report rows of both kinds of order, and
the KMP4 change feed.

Report rows come ordered by ``(created_at, kind, id)``.  On PostgreSQL they
stream from one server-side cursor; on SQLite they come in keyset chunks, each
its own short read (a long read would hold the WAL back from checkpoints).
Either way the process holds one batch at a time.

The filters always name the statuses (all of them when none is asked for), so
both tables answer from their ``(status, created_at)`` and ``(courier_id,
status, created_at)`` indexes instead of a scan.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CompoundSelect,
    DateTime,
    Select,
    Table,
    case,
    func,
    literal,
    null,
    select,
    text,
    tuple_,
    type_coerce,
    union_all,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from b24mw.models.base import UtcDateTime, table_of
from b24mw.models.couriers import Courier
from b24mw.models.enums import OrderStatus, TaskEventType, values
from b24mw.models.history import TaskEvent
from b24mw.models.orders import Delivery, InstantOrder
from b24mw.reports.kmp4 import Position
from b24mw.reports.schemas import FINAL_STATUSES, ReportKind, ReportQuery

TABLES: dict[ReportKind, Table] = {
    ReportKind.INSTANT: table_of(InstantOrder),
    ReportKind.DELIVERY: table_of(Delivery),
}
COURIERS = table_of(Courier)
EVENTS = table_of(TaskEvent)
ALL_STATUSES = values(OrderStatus)
# Beyond any id or change sequence either engine hands out.
FAR = 2**62

# Rows per batch: what the process holds at a time.
STREAM_BATCH = 2000
SQLITE_CHUNK = 1000


def _event_link(kind: ReportKind) -> ColumnElement[Any]:
    return EVENTS.c.instant_order_id if kind is ReportKind.INSTANT else EVENTS.c.order_id


def _report_select(kind: ReportKind, q: ReportQuery, *, native_times: bool) -> Select[Any]:
    orders = TABLES[kind]
    link = _event_link(kind)
    closed = orders.c.status.in_(FINAL_STATUSES)
    # Only a closed order has a duration: an open one is not looked up at all.
    first_event = select(func.min(EVENTS.c.ts)).where(link == orders.c.id).scalar_subquery()
    final_event = (
        select(func.max(EVENTS.c.ts))
        .where(
            link == orders.c.id,
            EVENTS.c.type == TaskEventType.STATUS.value,
            EVENTS.c.status.in_(FINAL_STATUSES),
        )
        .scalar_subquery()
    )

    def when(value: Any) -> Any:
        # asyncpg hands back aware UTC datetimes already: no per-value
        # conversion through ``UtcDateTime`` for a million rows.
        return type_coerce(value, DateTime(timezone=True)) if native_times else value

    stmt = (
        select(
            orders.c.id.label("order_id"),
            literal(kind.value).label("kind"),
            orders.c.courier_id,
            COURIERS.c.display_name.label("courier_name"),
            orders.c.status,
            orders.c.title,
            orders.c.customer_name,
            orders.c.total_amount,
            orders.c.currency_code,
            when(orders.c.created_at).label("created_at"),
            when(orders.c.updated_at).label("updated_at"),
            when(case((closed, first_event), else_=null())).label("first_event_at"),
            when(case((closed, final_event), else_=null())).label("final_at"),
        )
        .select_from(orders.outerjoin(COURIERS, COURIERS.c.id == orders.c.courier_id))
        .where(orders.c.status.in_(q.statuses or ALL_STATUSES))
    )
    if q.courier_id is not None:
        stmt = stmt.where(orders.c.courier_id == q.courier_id)
    if q.created_from is not None:
        stmt = stmt.where(orders.c.created_at >= q.created_from)
    if q.created_before is not None:
        stmt = stmt.where(orders.c.created_at < q.created_before)
    return stmt


def report_statement(q: ReportQuery) -> CompoundSelect[Any] | Select[Any]:
    """The whole report, ordered; what the PostgreSQL cursor runs (and what the
    EXPLAIN test plans)."""
    parts = [_report_select(kind, q, native_times=True) for kind in q.kinds]
    stmt: CompoundSelect[Any] | Select[Any] = parts[0] if len(parts) == 1 else union_all(*parts)
    columns = stmt.selected_columns
    return stmt.order_by(columns.created_at, columns.kind, columns.order_id)


def _after(kind: ReportKind, mark: tuple[datetime, str, int]) -> ColumnElement[bool]:
    """This kind's rows after ``(created_at, kind, id)`` in report order."""
    created = TABLES[kind].c.created_at
    at, after_kind, after_id = mark
    bound = literal(at, UtcDateTime())
    if kind.value == after_kind:
        return tuple_(created, TABLES[kind].c.id) > tuple_(bound, literal(after_id))
    return created >= bound if kind.value > after_kind else created > bound


def _report_chunk(q: ReportQuery, mark: tuple[datetime, str, int] | None) -> Any:
    parts = []
    for kind in q.kinds:
        part = _report_select(kind, q, native_times=False)
        if mark is not None:
            part = part.where(_after(kind, mark))
        columns = part.selected_columns
        parts.append(
            part.order_by(columns.created_at, columns.order_id).limit(SQLITE_CHUNK).subquery()
        )
    if len(parts) == 1:
        return select(parts[0]).order_by(parts[0].c.created_at, parts[0].c.order_id)
    stmt = union_all(*(select(p) for p in parts))
    columns = stmt.selected_columns
    return stmt.order_by(columns.created_at, columns.kind, columns.order_id).limit(SQLITE_CHUNK)


async def report_batches(
    conn: AsyncConnection, q: ReportQuery, *, server_cursor: bool
) -> AsyncGenerator[Sequence[Row[Any]], None]:
    """The report's rows in order, a batch at a time."""
    if server_cursor:
        # A year is a costly plan, and compiling it (JIT) costs more than it
        # saves on these per-row lookups.
        await conn.execute(text("SET LOCAL jit = off"))
        stmt = report_statement(q).execution_options(yield_per=STREAM_BATCH)
        result = await conn.stream(stmt)
        async for batch in result.partitions():
            yield batch
        return
    mark = None
    while True:
        rows = (await conn.execute(_report_chunk(q, mark))).all()
        # Each chunk its own read: end it before the rows go out.
        await conn.rollback()
        if rows:
            yield rows
        if len(rows) < SQLITE_CHUNK:
            return
        last = rows[-1]
        mark = (last.created_at, last.kind, last.order_id)


# --- the KMP4 change feed ------------------------------------------------------


def _feed_where(kind: ReportKind, position: Position, horizon: int) -> list[ColumnElement[bool]]:
    orders = TABLES[kind]
    # Row order is (change_seq, kind, id): at the cursor's own change_seq,
    # this kind continues after the cursor's id, or not at all, or wholly.
    if kind.value == position.kind:
        after_id = position.id
    else:
        after_id = -1 if kind.value > position.kind else FAR
    return [
        tuple_(orders.c.change_seq, orders.c.id) > tuple_(literal(position.change_seq), after_id),
        orders.c.change_seq < literal(horizon, BigInteger()),
    ]


def _feed_select(kind: ReportKind, position: Position, horizon: int) -> Select[Any]:
    orders = TABLES[kind]
    external = orders.c.external_id_1c if kind is ReportKind.DELIVERY else null()
    return select(
        literal(kind.value).label("kind"),
        orders.c.id,
        orders.c.title,
        orders.c.customer_name,
        orders.c.status,
        orders.c.total_amount,
        orders.c.currency_code,
        orders.c.courier_id,
        orders.c.notes,
        orders.c.created_at,
        orders.c.updated_at,
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


def feed_statement(position: Position, horizon: int, limit: int) -> CompoundSelect[Any]:
    """Up to ``limit`` changed orders after ``position``, below ``horizon``: each
    kind walks its ``(change_seq, id)`` index, and the two are merged."""
    parts = []
    for kind in ReportKind:
        part = _feed_select(kind, position, horizon)
        columns = part.selected_columns
        parts.append(part.order_by(columns.change_seq, columns.id).limit(limit).subquery())
    stmt = union_all(*(select(p) for p in parts))
    columns = stmt.selected_columns
    return stmt.order_by(columns.change_seq, columns.kind, columns.id).limit(limit)


async def feed_page(
    conn: AsyncConnection, position: Position, horizon: int, limit: int
) -> Sequence[Row[Any]]:
    return (await conn.execute(feed_statement(position, horizon, limit))).all()


async def feed_count(conn: AsyncConnection, position: Position, horizon: int) -> int:
    total = 0
    for kind in ReportKind:
        where = _feed_where(kind, position, horizon)
        counted = select(func.count()).select_from(TABLES[kind]).where(*where)
        total += int(await conn.scalar(counted) or 0)
    return total
