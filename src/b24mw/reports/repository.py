"""The report's statements: the rows of both kinds of order (the KMP4 change
feed is ``feed_repository``).

Report rows come oldest first, ``(created_at, kind, id)``: each kind is read
in ``(created_at, id)`` order (its own index serves it, nothing is sorted
before the first row) and the two are merged here.  On PostgreSQL each kind
streams from a server-side cursor; on SQLite it comes in keyset chunks, each
its own short read (a long read would hold the WAL back from checkpoints).
Either way the process holds a batch per kind at a time.

Rows are either *text* rows for CSV and JSON — timestamps, amounts and
durations already written by the database, so a million rows cost the API
little more than copying them — or *typed* rows for the workbook (datetimes
and decimals).  The duration is computed by the database in both.

The filters always name the statuses (all of them when none is asked for), so
a filtered report answers from the ``(status, created_at)`` and
``(courier_id, status, created_at)`` indexes instead of a scan.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import AsyncGenerator, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    Integer,
    Select,
    String,
    Table,
    Text,
    case,
    cast,
    func,
    literal,
    null,
    select,
    text,
    tuple_,
    type_coerce,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from b24mw.models.base import UtcDateTime, table_of
from b24mw.models.couriers import Courier
from b24mw.models.enums import OrderStatus, TaskEventType, values
from b24mw.models.history import HistoryEntry
from b24mw.models.orders import Delivery, InstantOrder
from b24mw.reports.csvout import FORMULA_TRIGGERS
from b24mw.reports.schemas import FINAL_STATUSES, ReportKind, ReportQuery

TABLES: dict[ReportKind, Table] = {
    ReportKind.INSTANT: table_of(InstantOrder),
    ReportKind.DELIVERY: table_of(Delivery),
}
COURIERS = table_of(Courier)
EVENTS = table_of(HistoryEntry)
ALL_STATUSES = values(OrderStatus)
# Beyond any id or change sequence either engine hands out.
FAR = 2**62

# Rows per batch and kind: what the process holds at a time.
STREAM_BATCH = 2000
SQLITE_CHUNK = 1000
# Positions in a report row (every shape), and the order of the rows.
CREATED, KIND, ORDER_ID = 9, 1, 0
MERGE_KEY = itemgetter(CREATED, KIND)
ROW_ORDER = itemgetter(CREATED, KIND, ORDER_ID)
RFC3339_PG = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'


def _event_link(kind: ReportKind) -> ColumnElement[Any]:
    return EVENTS.c.instant_order_id if kind is ReportKind.INSTANT else EVENTS.c.order_id


def rfc3339_text(column: Any, postgres: bool) -> Any:
    if postgres:
        return func.to_char(func.timezone("UTC", column), RFC3339_PG)
    # SQLite keeps UTC as 'YYYY-MM-DD HH:MM:SS.ffffff' (models.base.UtcDateTime).
    return func.replace(type_coerce(column, String), " ", "T").concat("Z")


def _duration_tenths(kind: ReportKind, postgres: bool) -> Any:
    """Tenths of a minute from the order's first history event to the event of
    its final status; NULL while it is open.  When the history is gone
    (archived after the retention period) the order's own timestamps stand
    in: it is created in the transaction that writes its first event, and a
    final order is not changed again."""
    orders = TABLES[kind]
    link = _event_link(kind)
    first_event = select(func.min(EVENTS.c.ts)).where(link == orders.c.id).scalar_subquery()
    final_event = (
        select(func.max(EVENTS.c.ts))
        .where(
            link == orders.c.id,
            EVENTS.c.type == TaskEventType.STATUS,
            EVENTS.c.status.in_(FINAL_STATUSES),
        )
        .scalar_subquery()
    )
    started = func.coalesce(first_event, orders.c.created_at)
    ended = func.coalesce(final_event, orders.c.updated_at)
    if postgres:
        seconds = func.extract("epoch", ended - started)
        tenths: Any = cast(func.greatest(0, func.round(seconds / 6)), BigInteger)
    else:
        days = func.julianday(ended) - func.julianday(started)
        tenths = func.max(0, cast(func.round(days * 14400), Integer))
    # CASE: an open order's history is not looked up at all.
    return case((orders.c.status.in_(FINAL_STATUSES), tenths), else_=null())


class Shape(StrEnum):
    """What a report row carries (positions in ``rows.py``)."""

    CSV = "csv"  # text, ready for the file: text cells neutralised, duration written
    JSON = "json"  # text as stored, duration in tenths
    TYPED = "typed"  # datetimes and decimals, for the workbook


def _neutralised(column: Any, postgres: bool) -> Any:
    """The CSV's formula neutralising (``csvout.neutralise``) done by the
    database (PostgreSQL text cannot hold NUL: nothing to look for there)."""
    triggers = [t for t in FORMULA_TRIGGERS if not (postgres and t == "\0")]
    first = func.substr(column, 1, 1)
    return case((first.in_(triggers), literal("'").concat(column)), else_=column)


def _report_select(
    kind: ReportKind, q: ReportQuery, *, postgres: bool, shape: Shape
) -> Select[Any]:
    orders = TABLES[kind]
    tenths = _duration_tenths(kind, postgres)
    text_cells: list[Any] = [
        orders.c.courier_id,
        COURIERS.c.display_name,
        orders.c.title,
        orders.c.customer_name,
    ]
    if shape is Shape.TYPED:
        # asyncpg hands back aware UTC datetimes: no per-value conversion
        # through ``UtcDateTime`` on PostgreSQL.
        def when(column: Any) -> Any:
            return type_coerce(column, DateTime(timezone=True)) if postgres else column

        amount: Any = orders.c.total_amount
        created, updated = when(orders.c.created_at), when(orders.c.updated_at)
        duration: Any = tenths
    else:
        amount = (
            cast(orders.c.total_amount, Text)
            if postgres
            else func.printf("%.2f", orders.c.total_amount)
        )
        created = rfc3339_text(orders.c.created_at, postgres)
        updated = rfc3339_text(orders.c.updated_at, postgres)
        duration = tenths
        if shape is Shape.CSV:
            text_cells = [_neutralised(c, postgres) for c in text_cells]
            written = (
                func.to_char(tenths / 10.0, "FM9999999990.0")
                if postgres
                else func.printf("%.1f", tenths / 10.0)
            )
            # Empty while open (SQLite's printf would write NULL as 0.0).  The
            # tenths are not selected besides: the lookups would run twice.
            duration = case((orders.c.status.in_(FINAL_STATUSES), written), else_="")
    courier_id, courier_name, title, customer_name = text_cells
    stmt = (
        select(
            orders.c.id.label("order_id"),
            literal(kind.value).label("kind"),
            courier_id.label("courier_id"),
            courier_name.label("courier_name"),
            orders.c.status,
            title.label("title"),
            customer_name.label("customer_name"),
            amount.label("total_amount"),
            orders.c.currency_code,
            created.label("created_at"),
            updated.label("updated_at"),
            duration.label("duration_min" if shape is Shape.CSV else "duration_tenths"),
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
    return stmt.order_by(orders.c.created_at, orders.c.id)


def report_statement(
    q: ReportQuery, kind: ReportKind, *, postgres: bool = True, shape: Shape = Shape.CSV
) -> Select[Any]:
    """One kind's report rows in ``(created_at, id)`` order; what the
    PostgreSQL cursor runs (and what the EXPLAIN test plans)."""
    return _report_select(kind, q, postgres=postgres, shape=shape)


def _as_datetime(value: datetime | str) -> datetime:
    """A row's ``created_at`` as a bound for the next chunk (text rows carry it
    as written, to the microsecond)."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.removesuffix("Z")).replace(tzinfo=UTC)


async def _kind_batches(
    conn: AsyncConnection, q: ReportQuery, kind: ReportKind, *, postgres: bool, shape: Shape
) -> AsyncGenerator[Sequence[Row[Any]], None]:
    stmt = _report_select(kind, q, postgres=postgres, shape=shape)
    if postgres:
        result = await conn.stream(stmt.execution_options(yield_per=STREAM_BATCH))
        async for batch in result.partitions():
            yield batch
        return
    orders = TABLES[kind]
    mark: tuple[datetime, int] | None = None
    while True:
        chunk = stmt
        if mark is not None:
            bound = literal(mark[0], UtcDateTime())
            chunk = stmt.where(tuple_(orders.c.created_at, orders.c.id) > tuple_(bound, mark[1]))
        rows = (await conn.execute(chunk.limit(SQLITE_CHUNK))).all()
        # Each chunk its own read: end it before the rows go out.
        await conn.rollback()
        if rows:
            yield rows
        if len(rows) < SQLITE_CHUNK:
            return
        mark = (_as_datetime(rows[-1][CREATED]), rows[-1][ORDER_ID])


async def _merge(
    streams: list[AsyncGenerator[Sequence[Row[Any]], None]],
) -> AsyncGenerator[Sequence[Row[Any]], None]:
    """Two streams of batches, each ordered, as one ordered by ``(created_at,
    kind, id)``.  Each round takes from both batches every row up to the
    smaller of their last keys, and lets ``sorted`` (two runs: one linear
    merge in C) interleave them; the batch that ended is refilled."""
    if len(streams) == 1:
        async for batch in streams[0]:
            yield batch
        return
    a_stream, b_stream = streams
    a, b = await anext(a_stream, None), await anext(b_stream, None)
    i = j = 0
    while a is not None and b is not None:
        limit = min(MERGE_KEY(a[-1]), MERGE_KEY(b[-1]))
        a_end = bisect_right(a, limit, lo=i, key=MERGE_KEY)
        b_end = bisect_right(b, limit, lo=j, key=MERGE_KEY)
        yield sorted([*a[i:a_end], *b[j:b_end]], key=ROW_ORDER)
        i, j = a_end, b_end
        if i == len(a):
            a, i = await anext(a_stream, None), 0
        if j == len(b):
            b, j = await anext(b_stream, None), 0
    rest, position, stream = (a, i, a_stream) if a is not None else (b, j, b_stream)
    if rest is not None:
        yield rest[position:]
    async for batch in stream:
        yield batch


async def report_batches(
    conn: AsyncConnection, q: ReportQuery, shape: Shape
) -> AsyncGenerator[Sequence[Row[Any]], None]:
    """The report's rows in order, a batch at a time, in ``shape``."""
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        # A year is a costly plan, and compiling it (JIT) costs more than it
        # saves on these per-row lookups.
        await conn.execute(text("SET LOCAL jit = off"))
    streams = [_kind_batches(conn, q, kind, postgres=postgres, shape=shape) for kind in q.kinds]
    try:
        async for batch in _merge(streams):
            yield batch
    finally:
        for stream in streams:
            await stream.aclose()
