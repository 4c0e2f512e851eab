from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    TextClause,
    bindparam,
    exists,
    insert,
    or_,
    select,
    text,
)

from b24mw.kit.direct_reads import select_rows
from b24mw.kit.staging import json_row, json_rows, stage
from b24mw.models.base import table_of
from b24mw.models.couriers import Courier
from b24mw.models.enums import OrderOrigin, OrderStatus
from b24mw.models.orders import InstantOrder, InstantOrderLine
from b24mw.orders import repository as lists


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
    status: OrderStatus
    total_amount: Decimal
    currency_code: str
    notes: str | None
    origin: OrderOrigin
    version: int
    created_at: datetime
    updated_at: datetime
    lines: list[LineSnapshot]


_ORDERS = table_of(InstantOrder)
_LINES = table_of(InstantOrderLine)
_LINE_FIELDS = ("line_no", "sku", "name", "qty", "price")
_COURIERS = table_of(Courier)
# What a new order's INSERT gives: the id and the change sequence come from
# the database (sequence, trigger).
_NEW_COLUMNS = tuple(c.name for c in _ORDERS.c if c.name not in ("id", "change_seq"))
_NEW_LINE_COLUMNS = tuple(c.name for c in _LINES.c if c.name not in ("id", "order_id"))


@dataclass(frozen=True, slots=True)
class Created:
    """What inserting a new order found: its id, or why there is none."""

    id: int | None
    # The named courier: True active, False inactive, None unknown (or none named).
    courier_active: bool | None = None
    # The order that already exists for the same task and courier.
    existing_id: int | None = None


def _same_task(courier_given: bool) -> str:
    courier = "o.courier_id = :courier_id" if courier_given else "o.courier_id IS NULL"
    return f"SELECT o.id FROM instant_orders o WHERE o.task_id_b24 = :task_id_b24 AND {courier}"


@cache
def _pg_create(task_given: bool, courier_given: bool) -> TextClause:
    """PostgreSQL: the courier check, the one-order-per-task check, the order
    and its lines in one statement (as a return is created); nothing is
    written when a check fails.  ON CONFLICT: a concurrent create of the same
    task and courier that committed first leaves this one empty instead of
    failing the transaction."""
    checks = ["true"]
    if task_given:
        checks.append(f"NOT EXISTS ({_same_task(courier_given)})")
    if courier_given:
        checks.append("EXISTS (SELECT 1 FROM couriers c WHERE c.id = :courier_id AND c.is_active)")
    columns = ", ".join(f'"{n}"' for n in _NEW_COLUMNS)
    line_columns = ", ".join(f'"{n}"' for n in _NEW_LINE_COLUMNS)
    return text(
        f"""
WITH ord AS (
    INSERT INTO instant_orders ({columns})
    SELECT {", ".join(f'r."{n}"' for n in _NEW_COLUMNS)}
    FROM json_populate_record(NULL::instant_orders, CAST(:order AS json)) AS r
    WHERE {" AND ".join(checks)}
    ON CONFLICT DO NOTHING
    RETURNING id
), lines AS (
    INSERT INTO instant_order_lines (order_id, {line_columns})
    SELECT ord.id, {", ".join(f'l."{n}"' for n in _NEW_LINE_COLUMNS)}
    FROM json_populate_recordset(NULL::instant_order_lines, CAST(:lines AS json))
        WITH ORDINALITY AS l
    CROSS JOIN ord
    ORDER BY l.ordinality
)
SELECT id FROM ord
"""
    )


@cache
def _insert_checked(task_given: bool, courier_given: bool) -> Any:
    """Elsewhere: the order alone, inserted only if the checks pass (its
    lines are staged with the commit)."""
    values = select(*(bindparam(n, type_=_ORDERS.c[n].type) for n in _NEW_COLUMNS))
    orders = _ORDERS.alias("o")
    if task_given:
        same = orders.c.task_id_b24 == bindparam("task_id_b24")
        courier = orders.c.courier_id
        same &= courier == bindparam("courier_id") if courier_given else courier.is_(None)
        values = values.where(~exists().where(same))
    if courier_given:
        active = (_COURIERS.c.id == bindparam("courier_id")) & _COURIERS.c.is_active
        values = values.where(exists().where(active))
    return insert(_ORDERS).from_select(list(_NEW_COLUMNS), values).returning(_ORDERS.c.id)


@cache
def _why_not(courier_given: bool) -> TextClause:
    """What stopped an insert: the courier's state and the order already there."""
    active = "(SELECT is_active FROM couriers WHERE id = :courier_id)" if courier_given else "NULL"
    return text(
        f"SELECT {active} AS courier_active, ({_same_task(courier_given)} LIMIT 1) AS existing_id"
    )


_SNAPSHOT = (
    select(_ORDERS, *(_LINES.c[name].label(f"line_{name}") for name in _LINE_FIELDS))
    .select_from(_ORDERS.outerjoin(_LINES, _LINES.c.order_id == _ORDERS.c.id))
    .where(_ORDERS.c.id == bindparam("order_id"))
    .order_by(_LINES.c.line_no)
)


class OrderRepository(lists.OrderKindRepository[InstantOrder]):
    __slots__ = ()
    model = InstantOrder
    orders = _ORDERS
    lines = _LINES
    searched = ("title", "customer_name")

    async def insert_new(self, values: dict[str, Any], lines: list[dict[str, Any]]) -> Created:
        """Insert a new order (every column but the generated ones) with its
        lines if its courier, when named, is registered and active and no
        order exists for the same Bitrix24 task and courier."""
        task_given = values["task_id_b24"] is not None
        courier_given = values["courier_id"] is not None
        keys = {"task_id_b24": values["task_id_b24"], "courier_id": values["courier_id"]}
        new_id: int | None
        if self.is_postgres:
            params = {**keys, "order": json_row(_ORDERS, values), "lines": json_rows(_LINES, lines)}
            result = await self.session.execute(_pg_create(task_given, courier_given), params)
            new_id = result.scalar_one_or_none()
        else:
            result = await self.session.execute(_insert_checked(task_given, courier_given), values)
            new_id = result.scalar_one_or_none()
            if new_id is not None:
                for line in lines:
                    stage(self.unit, _LINES, {"order_id": new_id, **line})
        if new_id is not None:
            return Created(new_id)
        # A check failed, or (PostgreSQL) a concurrent create of the same
        # task committed first: a fresh look says which.
        row = (await self.session.execute(_why_not(courier_given), keys)).one()
        return Created(None, row.courier_active, row.existing_id)

    async def snapshot(self, order_id: int) -> OrderSnapshot | None:
        found = await select_rows(self.session, _SNAPSHOT, {"order_id": order_id})
        if not found.rows:
            return None
        # The order's columns, then its line's (None without lines).
        split = len(_ORDERS.c)
        head = dict(zip(found.names[:split], found.rows[0][:split], strict=True))
        lines = [LineSnapshot(*row[split:]) for row in found.rows if row[split] is not None]
        return OrderSnapshot(
            **{name: head[name] for name in OrderSnapshot.__slots__ if name != "lines"},
            lines=lines,
        )

    async def by_task_and_courier(self, task_id_b24: int, courier_id: str | None) -> int | None:
        stmt = select(InstantOrder.id).where(InstantOrder.task_id_b24 == task_id_b24)
        if courier_id is None:
            stmt = stmt.where(InstantOrder.courier_id.is_(None))
        else:
            stmt = stmt.where(InstantOrder.courier_id == courier_id)
        return (await self.session.execute(stmt.limit(1))).scalar_one_or_none()

    @classmethod
    def history(cls, order_id: ColumnElement[int]) -> ColumnElement[bool]:
        """The order's own rows, and rows the webhook processor recorded for
        its task alone (no order link), which belong to every order of that
        task (the task id read in the same statement; an order without a
        task matches none of those)."""
        events = lists.EVENTS
        task_id = select(_ORDERS.c.task_id_b24).where(_ORDERS.c.id == order_id).scalar_subquery()
        return or_(
            events.c.instant_order_id == order_id,
            (events.c.task_id_b24 == task_id)
            & events.c.instant_order_id.is_(None)
            & events.c.order_id.is_(None)
            & events.c.return_id.is_(None),
        )
