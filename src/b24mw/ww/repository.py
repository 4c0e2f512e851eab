from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Row, RowMapping, Select, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from b24mw.kit.pagination import Page, PageRequest
from b24mw.lifecycle import repository as lists
from b24mw.lifecycle.schemas import OrderFilter
from b24mw.models.base import table_of
from b24mw.models.orders import InstantOrder, InstantOrderLine

# One round trip with the lines (the model's default is a second SELECT);
# built once, as every read and change of an order starts here.
_GET = (
    select(InstantOrder)
    .where(InstantOrder.id == bindparam("order_id"))
    .options(joinedload(InstantOrder.lines))
)


@dataclass(slots=True)
class LineSnapshot:
    line_no: int
    sku: str
    name: str
    qty: int
    price: Decimal


@dataclass(slots=True)
class OrderSnapshot:
    """An order as read for a status change: plain values, no ORM object (the
    change is a staged UPDATE, so nothing needs the session's bookkeeping)."""

    id: int
    task_id_b24: int | None
    courier_id: str | None
    title: str
    customer_name: str
    client_phone: str | None
    status: str
    total_amount: Decimal
    currency_code: str
    notes: str | None
    origin: str
    version: int
    created_at: datetime
    updated_at: datetime
    lines: list[LineSnapshot]


_ORDERS = table_of(InstantOrder)
_LINES = table_of(InstantOrderLine)
_LINE_FIELDS = ("line_no", "sku", "name", "qty", "price")
# Who may see an order's history, and which task it shares: no lines needed.
_HEAD = select(_ORDERS.c.id, _ORDERS.c.courier_id, _ORDERS.c.task_id_b24).where(
    _ORDERS.c.id == bindparam("order_id")
)
_SNAPSHOT = (
    select(_ORDERS, *(_LINES.c[name].label(f"line_{name}") for name in _LINE_FIELDS))
    .select_from(_ORDERS.outerjoin(_LINES, _LINES.c.order_id == _ORDERS.c.id))
    .where(_ORDERS.c.id == bindparam("order_id"))
    .order_by(_LINES.c.line_no)
)


class OrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, order: InstantOrder) -> None:
        self.session.add(order)

    async def snapshot(self, order_id: int) -> OrderSnapshot | None:
        rows = (await self.session.execute(_SNAPSHOT, {"order_id": order_id})).all()
        if not rows:
            return None
        head = rows[0]._mapping
        lines = [
            LineSnapshot(*(row._mapping[f"line_{name}"] for name in _LINE_FIELDS))
            for row in rows
            if row._mapping["line_line_no"] is not None
        ]
        return OrderSnapshot(
            **{name: head[name] for name in OrderSnapshot.__slots__ if name != "lines"},
            lines=lines,
        )

    async def get(self, order_id: int) -> InstantOrder | None:
        return (
            (await self.session.execute(_GET, {"order_id": order_id})).unique().scalar_one_or_none()
        )

    async def by_task_and_courier(self, task_id_b24: int, courier_id: str | None) -> int | None:
        stmt = select(InstantOrder.id).where(InstantOrder.task_id_b24 == task_id_b24)
        if courier_id is None:
            stmt = stmt.where(InstantOrder.courier_id.is_(None))
        else:
            stmt = stmt.where(InstantOrder.courier_id == courier_id)
        return (await self.session.execute(stmt.limit(1))).scalar_one_or_none()

    async def head(self, order_id: int) -> Row[Any, Any, Any] | None:
        """The order's id, courier and task (``.courier_id``, ``.task_id_b24``)."""
        return (await self.session.execute(_HEAD, {"order_id": order_id})).first()

    async def search(
        self, request: PageRequest, f: OrderFilter
    ) -> tuple[Page[RowMapping], dict[int, list[dict[str, Any]]]]:
        branches = list_branches(f)
        return await lists.order_page(self.session, request, _ORDERS, _LINES, branches)

    async def events(
        self, request: PageRequest, order_id: int, task_id_b24: int | None
    ) -> Page[RowMapping]:
        return await lists.event_page(
            self.session, request, events_condition(order_id, task_id_b24)
        )


def list_branches(f: OrderFilter) -> list[Select[Any]]:
    return lists.order_branches(_ORDERS, f, ("title", "customer_name"))


def events_condition(order_id: int, task_id_b24: int | None) -> ColumnElement[bool]:
    """The order's history: its own rows, and rows the webhook processor
    recorded for its task alone (no order link), which belong to every order
    of that task."""
    events = lists.EVENTS
    condition = events.c.instant_order_id == order_id
    if task_id_b24 is None:
        return condition
    return or_(
        condition,
        (events.c.task_id_b24 == task_id_b24)
        & events.c.instant_order_id.is_(None)
        & events.c.order_id.is_(None)
        & events.c.return_id.is_(None),
    )
