from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, Select, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from b24mw.kit.types import as_row_id
from b24mw.lifecycle.schemas import OrderFilter
from b24mw.models.base import table_of
from b24mw.models.history import TaskEvent
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
    deal_id_b24: int | None
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

    def _filtered(self, f: OrderFilter) -> Select[InstantOrder]:
        stmt = select(InstantOrder)
        if f.statuses:
            stmt = stmt.where(InstantOrder.status.in_(f.statuses))
        if f.courier_id is not None:
            stmt = stmt.where(InstantOrder.courier_id == f.courier_id)
        if f.created_from is not None:
            stmt = stmt.where(InstantOrder.created_at >= f.created_from)
        if f.created_to is not None:
            stmt = stmt.where(InstantOrder.created_at < f.created_to)
        if f.q:
            # autoescape: the text is searched literally, "%" and "_" included.
            text = f.q.lower()
            conditions: list[ColumnElement[bool]] = [
                func.lower(InstantOrder.title).contains(text, autoescape=True),
                func.lower(InstantOrder.customer_name).contains(text, autoescape=True),
                InstantOrder.client_phone.contains(f.q, autoescape=True),
            ]
            if (number := as_row_id(f.q)) is not None:
                conditions += [InstantOrder.id == number, InstantOrder.task_id_b24 == number]
            stmt = stmt.where(or_(*conditions))
        return stmt

    async def search(
        self, f: OrderFilter, *, offset: int, limit: int
    ) -> tuple[Sequence[InstantOrder], int]:
        stmt = self._filtered(f)
        total = (
            await self.session.execute(select(func.count()).select_from(stmt.subquery()))
        ).scalar_one()
        ordered = stmt.order_by(InstantOrder.created_at.desc(), InstantOrder.id.desc())
        rows = (await self.session.execute(ordered.offset(offset).limit(limit))).scalars()
        return rows.all(), int(total)

    async def events(
        self, order: InstantOrder, *, offset: int, limit: int
    ) -> tuple[Sequence[TaskEvent], int]:
        # Rows the webhook processor records for the task alone (no order
        # link) belong to every order of that task.
        condition = TaskEvent.instant_order_id == order.id
        if order.task_id_b24 is not None:
            condition = or_(
                condition,
                (TaskEvent.task_id_b24 == order.task_id_b24)
                & TaskEvent.instant_order_id.is_(None)
                & TaskEvent.order_id.is_(None)
                & TaskEvent.return_id.is_(None),
            )
        stmt = select(TaskEvent).where(condition)
        total = (
            await self.session.execute(select(func.count()).select_from(stmt.subquery()))
        ).scalar_one()
        ordered = stmt.order_by(TaskEvent.ts, TaskEvent.id).offset(offset).limit(limit)
        return (await self.session.execute(ordered)).scalars().all(), int(total)
