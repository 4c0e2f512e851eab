"""Walking Warehouse orders: create, edit, assign, move through the status
machine.  Every function works inside the caller's unit of work (it flushes,
never commits), so the API and the webhook inbox processor share it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.couriers import service as couriers
from b24mw.i18n import t
from b24mw.kit.auth import Actor, Role
from b24mw.kit.db import Executor
from b24mw.kit.errors import (
    Conflict,
    FieldError,
    Forbidden,
    TransitionRefused,
    ValidationFailed,
)
from b24mw.kit.pagination import PageRequest, Paginated
from b24mw.models.base import utcnow
from b24mw.models.couriers import Courier
from b24mw.models.enums import OrderKind, OrderOrigin, OrderStatus, TaskEventType
from b24mw.models.orders import InstantOrder, InstantOrderLine
from b24mw.orders import flows as order_flows
from b24mw.orders import reads
from b24mw.orders.machine import ASSIGNABLE
from b24mw.orders.schemas import (
    LineIn,
    OrderFilter,
    StatusChange,
    TaskEventRead,
    check_supplied_total,
    lines_total,
)
from b24mw.orders.scope import own_courier_id, visible
from b24mw.outbox import Outbox
from b24mw.outbox.enqueue import task_key
from b24mw.ww.repository import LineSnapshot, OrderRepository, OrderSnapshot
from b24mw.ww.schemas import OrderAssign, OrderCreate, OrderRead, OrderUpdate

# The actor for changes no person made (webhook inbox, reconciliation).
SYSTEM_ACTOR = Actor(sub="system", roles=frozenset({Role.ADMIN}))


def identity_of(order: InstantOrder | OrderSnapshot) -> order_flows.OrderIdentity:
    return order_flows.OrderIdentity(
        kind=OrderKind.INSTANT,
        id=order.id,
        ref=str(order.id),
        subject=f"ww/orders/{order.id}",
        task_id_b24=order.task_id_b24,
        sync_key=task_key(order.task_id_b24),
        instant_order_id=order.id,
        deal_id_b24=order.deal_id_b24,
    )


def _lines(items: Sequence[LineIn]) -> list[InstantOrderLine]:
    return [
        InstantOrderLine(line_no=n, sku=i.sku, name=i.name, qty=i.qty, price=i.price)
        for n, i in enumerate(items, start=1)
    ]


def _duplicate(existing_id: int, task_id_b24: int, courier_id: str | None) -> Conflict:
    who = f"courier {courier_id}" if courier_id else "no courier"
    return Conflict(
        f"Order {existing_id} already exists for Bitrix24 task {task_id_b24} and {who}.",
        errors=[
            FieldError("task_id_b24", f"an order for this task and courier exists: {existing_id}")
        ],
        code="conflict.duplicate",
        extra={"existing_id": existing_id},
    )


def _courier_refused(courier_id: str, active: bool | None) -> ValidationFailed:
    state = "unknown" if active is None else "inactive"
    return ValidationFailed(
        f"Courier {courier_id} is {state}.",
        errors=[FieldError("courier_id", f"{state} courier")],
    )


async def _active_courier(session: AsyncSession, courier_id: str) -> Courier:
    courier = await couriers.find(session, courier_id)
    if courier is None or not courier.is_active:
        raise _courier_refused(courier_id, None if courier is None else courier.is_active)
    return courier


async def create_order(
    session: AsyncSession,
    outbox: Outbox,
    actor: Actor,
    data: OrderCreate,
    *,
    origin: OrderOrigin = OrderOrigin.API,
    deal_id_b24: int | None = None,
) -> OrderSnapshot:
    """Create an order with its history row and ``integration.task.created``.

    A courier creates only for themselves.  One order per (Bitrix24 task,
    courier): a duplicate raises ``Conflict`` whose ``extra["existing_id"]``
    names the order that exists, so a repeated webhook can answer with it.
    """
    # As lean as a return: plain rows, no ORM objects; the checks, the order
    # and its lines are one statement on PostgreSQL, the history row and the
    # event go out with the commit.
    courier_id = own_courier_id(
        actor, data.courier_id, "A courier creates orders only for themselves."
    )
    total = lines_total(data.items)
    check_supplied_total(data.total_amount, total)
    now = utcnow()
    values: dict[str, Any] = {
        "task_id_b24": data.task_id_b24,
        "deal_id_b24": deal_id_b24,
        "courier_id": courier_id,
        "title": data.title,
        "customer_name": data.customer_name,
        "client_phone": data.client_phone,
        "status": OrderStatus.NEW,
        "total_amount": total,
        "currency_code": data.currency_code,
        "notes": data.notes,
        "origin": OrderOrigin(origin),
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    lines: list[dict[str, Any]] = [
        {"line_no": n, "sku": i.sku, "name": i.name, "qty": i.qty, "price": i.price}
        for n, i in enumerate(data.items, start=1)
    ]
    created = await OrderRepository(session).insert_new(values, lines)
    if created.id is None:
        if courier_id is not None and not created.courier_active:
            raise _courier_refused(courier_id, created.courier_active)
        assert data.task_id_b24 is not None and created.existing_id is not None
        raise _duplicate(created.existing_id, data.task_id_b24, courier_id)

    order = OrderSnapshot(id=created.id, **values, lines=[LineSnapshot(**line) for line in lines])
    view = OrderRead.model_validate(order).model_dump(mode="json")
    order_flows.record_creation(
        session, outbox, identity_of(order), actor, view, {"origin": order.origin}
    )
    return order


async def get_order(session: AsyncSession, actor: Actor, order_id: int) -> InstantOrder:
    """The order, if the actor may see it (a courier: only their own)."""
    order = await OrderRepository(session).get(order_id)
    return visible(actor, order, f"Order {order_id} not found.")


async def read_order(session: Executor, actor: Actor, order_id: int) -> OrderSnapshot:
    """The order as plain values (one statement, no ORM object), if the actor may see it."""
    snapshot = await OrderRepository(session).snapshot(order_id)
    return visible(actor, snapshot, f"Order {order_id} not found.")


async def list_orders(
    session: Executor, actor: Actor, request: PageRequest, filters: OrderFilter
) -> Paginated[OrderRead]:
    refusal = "A courier lists only their own orders."
    repo = OrderRepository(session)
    return await reads.list_page(repo, actor, request, filters, OrderRead, refusal=refusal)


async def update_order(
    session: AsyncSession, actor: Actor, order_id: int, data: OrderUpdate
) -> InstantOrder:
    """Replace the lines and/or the notes of a NEW order; the total follows the lines."""
    order = await get_order(session, actor, order_id)
    if order.status != OrderStatus.NEW:
        raise TransitionRefused(
            f"Order {order_id} is {order.status}: only NEW orders can be edited.",
            errors=[FieldError("status", "must be NEW to edit lines or notes")],
        )
    changes = data.model_dump(exclude_unset=True)
    changed: list[str] = []
    if data.items is not None:
        total = lines_total(data.items)
        check_supplied_total(data.total_amount, total)
        order.lines = _lines(data.items)
        order.total_amount = total
        changed.append("items")
    else:
        check_supplied_total(data.total_amount, order.total_amount)
    if "notes" in changes:
        order.notes = data.notes
        changed.append("notes")
    if not changed:
        return order
    # Touch the row so the version check guards line edits too.
    order.updated_at = utcnow()
    await order_flows.flush_or_conflict(session)
    order_flows.record(
        session,
        identity_of(order),
        actor,
        TaskEventType.COMMENT,
        status=order.status,
        payload={"event": "updated", "fields": changed, "total_amount": f"{order.total_amount}"},
    )
    return order


async def assign(
    session: AsyncSession,
    outbox: Outbox,
    actor: Actor,
    order_id: int,
    data: OrderAssign,
    *,
    locale: str,
) -> InstantOrder:
    """Give the order to a courier, take it away, or record that the courier
    declined it.  A courier may only decline their own order."""
    order = await get_order(session, actor, order_id)
    if actor.courier_scoped and not (data.decline and data.courier_id is None):
        raise Forbidden(
            "A courier may only decline their own order (courier_id null, decline true).",
            errors=[FieldError("courier_id", "couriers may only decline: send null")],
        )
    status = order.status
    if status not in ASSIGNABLE:
        raise TransitionRefused(
            f"Order {order_id} is {status.value}: the courier can change only before pick-up.",
            errors=[FieldError("status", "must be NEW, PICKING or READY to reassign")],
        )
    previous = order.courier_id
    if data.decline and previous is None:
        raise ValidationFailed(
            "The order has no courier who could decline it.",
            errors=[FieldError("decline", "the order has no courier")],
        )
    if data.decline and data.courier_id == previous:
        raise ValidationFailed(
            "A courier who declined cannot stay assigned.",
            errors=[FieldError("courier_id", "must differ from the declining courier")],
        )
    if data.courier_id == previous:
        return order
    courier = await _active_courier(session, data.courier_id) if data.courier_id else None
    if order.task_id_b24 is not None:
        existing = await OrderRepository(session).by_task_and_courier(
            order.task_id_b24, data.courier_id
        )
        if existing is not None and existing != order.id:
            raise _duplicate(existing, order.task_id_b24, data.courier_id)

    order.courier_id = data.courier_id
    order.updated_at = utcnow()
    await order_flows.flush_or_conflict(session)

    event = "declined" if data.decline else ("assigned" if data.courier_id else "unassigned")
    where = identity_of(order)
    order_flows.record(
        session,
        where,
        actor,
        TaskEventType.COMMENT,
        status=order.status,
        payload={"event": event, "from": previous, "to": data.courier_id},
    )
    if data.decline:
        order_flows.b24_comment(
            session, outbox, where, t("order.declined", locale, id=order.id, courier=previous)
        )
    if data.courier_id:
        order_flows.b24_comment(
            session,
            outbox,
            where,
            t("order.assigned", locale, id=order.id, courier=data.courier_id),
        )
        if courier is not None and courier.b24_user_id:
            order_flows.b24_task_call(
                session,
                outbox,
                where,
                "tasks.task.update",
                {"fields": {"RESPONSIBLE_ID": courier.b24_user_id}},
            )
    elif not data.decline:
        order_flows.b24_comment(session, outbox, where, t("order.unassigned", locale, id=order.id))
    return order


async def change_status(
    session: AsyncSession,
    outbox: Outbox,
    actor: Actor,
    order_id: int,
    change: StatusChange,
    *,
    locale: str,
) -> OrderSnapshot:
    """Move the order through the status machine, with history and sync jobs."""
    # Read as plain values: the hottest write of the API, and the change
    # itself is a staged UPDATE (orders.flows).
    snapshot = await OrderRepository(session).snapshot(order_id)
    order = visible(actor, snapshot, f"Order {order_id} not found.")
    await order_flows.change_status(
        session,
        outbox,
        locale=locale,
        actor=actor,
        order=order,
        identity=identity_of(order),
        change=change,
        event_data={"courier_id": order.courier_id},
    )
    return order


async def events(
    session: Executor, actor: Actor, order_id: int, request: PageRequest
) -> Paginated[TaskEventRead]:
    missing = f"Order {order_id} not found."
    repo = OrderRepository(session)
    return await reads.history_page(repo, actor, order_id, request, missing=missing)
