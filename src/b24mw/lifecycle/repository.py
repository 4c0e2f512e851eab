"""Statements both order kinds share: the filtered list as index walks
(``kit.listing``), the lines of a page, a page of history, and the
version-checked UPDATE of a status change."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.kit.listing import Keyset, fetch_page, in_ids
from b24mw.kit.pagination import Page, PageRequest
from b24mw.kit.staging import stage_update
from b24mw.kit.types import as_row_id
from b24mw.lifecycle.schemas import OrderFilter
from b24mw.models.base import table_of
from b24mw.models.history import TaskEvent
from b24mw.models.orders import Delivery, InstantOrder

EVENTS = table_of(TaskEvent)
# The table behind each kind of tracked order (``lifecycle.sync.Tracked.kind``).
ORDER_TABLES = {"instant": table_of(InstantOrder), "delivery": table_of(Delivery)}
# History is read oldest first; the id orders events of one instant.
EVENT_KEYSET = Keyset((EVENTS.c.ts, EVENTS.c.id), descending=False)


@cache
def order_keyset(orders: Table) -> Keyset:
    """Newest first; the id breaks ties of ``created_at``."""
    return Keyset((orders.c.created_at, orders.c.id), descending=True)


def search_text(orders: Table, searched: Sequence[str]) -> ColumnElement[str]:
    """Every text ``q`` looks into, in one expression: on PostgreSQL the
    trigram index of migration 0012 is built on exactly this expression."""
    text: ColumnElement[str] = func.lower(orders.c[searched[0]])
    for name in searched[1:]:
        text = text.op("||")(literal_column("' '")).op("||")(func.lower(orders.c[name]))
    phone = func.coalesce(orders.c.client_phone, literal_column("''"))
    return text.op("||")(literal_column("' '")).op("||")(phone)


def _search(orders: Table, searched: Sequence[str], q: str) -> ColumnElement[bool]:
    # autoescape: the text is searched literally, "%" and "_" included.
    text = q.lower()
    fields = [func.lower(orders.c[name]).contains(text, autoescape=True) for name in searched]
    fields.append(orders.c.client_phone.contains(q, autoescape=True))
    # The joined text finds the candidates from its index; the fields decide
    # (a match across two fields is none).
    found: ColumnElement[bool] = search_text(orders, searched).contains(text, autoescape=True)
    found = and_(found, or_(*fields))
    if (number := as_row_id(q)) is not None:
        found = or_(found, orders.c.id == number, orders.c.task_id_b24 == number)
    return found


def order_branches(orders: Table, f: OrderFilter, searched: Sequence[str]) -> list[Select[Any]]:
    """One index walk per status asked for, on ``(status, created_at)`` or
    ``(courier_id, status, created_at)``; without a status, ``(created_at,
    id)`` or ``(courier_id, created_at, id)``.  ``q`` filters along the walk
    (``searched``: the text columns it looks into)."""
    stmt = select(orders)
    if f.courier_id is not None:
        stmt = stmt.where(orders.c.courier_id == f.courier_id)
    if f.created_from is not None:
        stmt = stmt.where(orders.c.created_at >= f.created_from)
    if f.created_to is not None:
        stmt = stmt.where(orders.c.created_at < f.created_to)
    if f.q:
        stmt = stmt.where(_search(orders, searched, f.q))
    if not f.statuses:
        return [stmt]
    return [stmt.where(orders.c.status == status) for status in dict.fromkeys(f.statuses)]


@cache
def lines_statement(lines: Table, dialect: str) -> Select[Any]:
    """The lines of the orders of one page (``ids``), in order."""
    return (
        select(lines)
        .where(in_ids(lines.c.order_id, dialect))
        .order_by(lines.c.order_id, lines.c.line_no)
    )


async def order_page(
    session: AsyncSession,
    request: PageRequest,
    orders: Table,
    lines: Table,
    branches: list[Select[Any]],
) -> tuple[Page[dict[str, Any]], dict[int, list[dict[str, Any]]]]:
    """A page of orders, and the lines of each (one more statement)."""
    page = await fetch_page(session, request, order_keyset(orders), branches)
    found: dict[int, list[dict[str, Any]]] = {row["id"]: [] for row in page.rows}
    if found:
        stmt = lines_statement(lines, session.get_bind().dialect.name)
        for line in (await session.execute(stmt, {"ids": list(found)})).mappings():
            found[line["order_id"]].append(dict(line))
    return page, found


def event_branches(condition: ColumnElement[bool]) -> list[Select[Any]]:
    return [select(EVENTS).where(condition)]


async def event_page(
    session: AsyncSession, request: PageRequest, condition: ColumnElement[bool]
) -> Page[dict[str, Any]]:
    return await fetch_page(session, request, EVENT_KEYSET, event_branches(condition))


def stage_status_move(
    session: AsyncSession,
    kind: str,
    *,
    order_id: int,
    version: int,
    values: dict[str, Any],
    conflict: Exception,
) -> None:
    """The UPDATE of a status change, matched on the version the change was
    checked against and written with the unit of work's other rows (one
    statement on PostgreSQL, at the commit): if another change got there first
    it matches nothing, and ``conflict`` ends the whole unit of work."""
    stage_update(
        session,
        ORDER_TABLES[kind],
        where={"id": order_id, "version": version},
        values=values,
        otherwise=conflict,
    )
