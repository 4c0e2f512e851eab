"""Deliveries from 1C: create (and ask Bitrix24 for the courier's task), list,
and move through the same status machine as Walking Warehouse orders."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.couriers import service as couriers
from b24mw.crm import service as crm_service
from b24mw.deliveries.hooks import TASK_CREATED_HOOK, sync_key
from b24mw.deliveries.repository import DeliveryRepository
from b24mw.deliveries.schemas import DeliveryCreate, DeliveryRead
from b24mw.i18n import t
from b24mw.kit.auth import Actor, Role
from b24mw.kit.db import Executor
from b24mw.kit.errors import Conflict, FieldError, ValidationFailed
from b24mw.kit.pagination import PageRequest, Paginated
from b24mw.kit.staging import savepoint
from b24mw.models.base import utcnow
from b24mw.models.couriers import Courier
from b24mw.models.enums import OrderKind, OrderStatus
from b24mw.models.orders import Delivery, DeliveryLine
from b24mw.orders import flows as order_flows
from b24mw.orders import reads
from b24mw.orders.machine import Transition
from b24mw.orders.schemas import (
    OrderFilter,
    StatusChange,
    TaskEventRead,
    check_supplied_total,
    lines_total,
)
from b24mw.orders.scope import visible
from b24mw.outbox import Outbox

ONEC_STATUS_PATH = "deliveries/status"


def identity_of(delivery: Delivery) -> order_flows.OrderIdentity:
    return order_flows.OrderIdentity(
        kind=OrderKind.DELIVERY,
        id=delivery.id,
        ref=delivery.external_id_1c,
        subject=f"deliveries/{delivery.id}",
        task_id_b24=delivery.task_id_b24,
        sync_key=sync_key(delivery.id),
        order_id=delivery.id,
        deal_id_b24=delivery.deal_id_b24,
    )


def _duplicate(existing_id: int, external_id_1c: str) -> Conflict:
    return Conflict(
        f"Delivery {external_id_1c} already exists as {existing_id}.",
        errors=[FieldError("external_id_1c", f"already exists: delivery {existing_id}")],
        code="conflict.duplicate",
        extra={"existing_id": existing_id},
    )


async def _courier_with_b24_user(session: AsyncSession, courier_id: str) -> Courier:
    courier = await couriers.find(session, courier_id)
    if courier is None or not courier.is_active or courier.b24_user_id is None:
        reason = (
            "unknown courier"
            if courier is None
            else "inactive courier"
            if not courier.is_active
            else "the courier has no Bitrix24 user (b24_user_id)"
        )
        raise ValidationFailed(
            f"Courier {courier_id}: {reason}.", errors=[FieldError("courier_id", reason)]
        )
    return courier


def task_fields(delivery: Delivery, b24_user_id: int, locale: str) -> dict[str, Any]:
    """``tasks.task.add`` fields: what the courier needs to see on the task."""
    money = {"currency": delivery.currency_code}
    lines = [
        t("delivery.customer", locale, customer=delivery.customer_name),
        t("delivery.address", locale, address=delivery.address),
    ]
    if delivery.client_phone:
        lines.append(t("delivery.phone", locale, phone=delivery.client_phone))
    lines += [
        t("delivery.cod", locale, amount=f"{delivery.cod_amount:.2f}", **money),
        t("delivery.price", locale, amount=f"{delivery.delivery_price:.2f}", **money),
        t("delivery.total", locale, amount=f"{delivery.total_amount:.2f}", **money),
        t("delivery.lines", locale),
    ]
    lines += [
        t("delivery.line", locale, sku=ln.sku, name=ln.name, qty=ln.qty, price=f"{ln.price:.2f}")
        for ln in delivery.lines
    ]
    if delivery.notes:
        lines.append(t("delivery.notes", locale, notes=delivery.notes))
    fields: dict[str, Any] = {
        "TITLE": delivery.title,
        "DESCRIPTION": "\n".join(lines),
        "RESPONSIBLE_ID": b24_user_id,
    }
    if delivery.deal_id_b24:
        # Bound to the deal: managers see the task on the deal's card.
        fields["UF_CRM_TASK"] = [f"D_{delivery.deal_id_b24}"]
    return fields


async def create_delivery(
    session: AsyncSession, outbox: Outbox, actor: Actor, data: DeliveryCreate, *, locale: str
) -> Delivery:
    """Store the delivery and, in the same transaction, the ``tasks.task.add``
    job whose result hook links the task (``deliveries.hooks``)."""
    courier = await _courier_with_b24_user(session, data.courier_id)
    assert courier.b24_user_id is not None
    # The customer pays the goods and the delivery: that is the order's total.
    total = lines_total(data.items, plus=data.delivery_price)
    check_supplied_total(data.total_amount, total)
    repo = DeliveryRepository(session)
    existing = await repo.id_by_external(data.external_id_1c)
    if existing is not None:
        raise _duplicate(existing, data.external_id_1c)
    if data.deal_id_b24 is not None:
        await crm_service.require_open_deal(session, data.deal_id_b24)

    delivery = Delivery(
        external_id_1c=data.external_id_1c,
        courier_id=courier.id,
        title=data.title
        or t(
            "delivery.title", locale, external_id=data.external_id_1c, customer=data.customer_name
        ),
        customer_name=data.customer_name,
        address=data.address,
        client_phone=data.client_phone,
        cod_amount=data.cod_amount,
        delivery_price=data.delivery_price,
        total_amount=total,
        currency_code=data.currency_code,
        status=OrderStatus.NEW,
        notes=data.notes,
        deal_id_b24=data.deal_id_b24,
        lines=[
            DeliveryLine(line_no=n, sku=i.sku, name=i.name, qty=i.qty, price=i.price)
            for n, i in enumerate(data.items, start=1)
        ],
    )
    try:
        async with savepoint(session):
            repo.add(delivery)
    except IntegrityError:
        existing = await repo.id_by_external(data.external_id_1c)
        if existing is None:
            raise
        raise _duplicate(existing, data.external_id_1c) from None

    outbox.b24_task_add(
        session,
        task_fields(delivery, courier.b24_user_id, locale),
        ordering_key=sync_key(delivery.id),
        on_result=TASK_CREATED_HOOK,
        context={"delivery_id": delivery.id},
    )
    view = DeliveryRead.model_validate(delivery).model_dump(mode="json")
    order_flows.record_creation(
        session, outbox, identity_of(delivery), actor, view, {"external_id_1c": data.external_id_1c}
    )
    return delivery


async def get_delivery(session: AsyncSession, actor: Actor, delivery_id: int) -> Delivery:
    delivery = await DeliveryRepository(session).get(delivery_id)
    return visible(actor, delivery, f"Delivery {delivery_id} not found.")


async def list_deliveries(
    session: Executor, actor: Actor, request: PageRequest, filters: OrderFilter
) -> Paginated[DeliveryRead]:
    refusal = "A courier lists only their own deliveries."
    repo = DeliveryRepository(session)
    return await reads.list_page(repo, actor, request, filters, DeliveryRead, refusal=refusal)


def _hand_off_to_1c(
    session: AsyncSession,
    outbox: Outbox,
    delivery: Delivery,
    transition: Transition,
    actor: Actor,
    note: str | None,
) -> None:
    # 1C already knows what it decided itself; echoing it back invites loops.
    if actor.has(Role.ONEC) and not actor.has(Role.ADMIN):
        return
    body = {
        "delivery_id": delivery.id,
        "external_id_1c": delivery.external_id_1c,
        "status": transition.target.value,
        "previous_status": transition.source.value,
        "changed_at": utcnow().isoformat().replace("+00:00", "Z"),
        "courier_id": delivery.courier_id,
        "task_id_b24": delivery.task_id_b24,
        "actor_id": actor.sub,
        "note": note,
    }
    outbox.onec(
        session,
        ONEC_STATUS_PATH,
        body,
        # One key per change: the version moves on every committed update.
        idempotency_key=f"b24mw:delivery:{delivery.id}:v{delivery.version}",
        ordering_key=f"onec:delivery:{delivery.id}",
    )


async def change_status(
    session: AsyncSession,
    outbox: Outbox,
    actor: Actor,
    delivery_id: int,
    change: StatusChange,
    *,
    locale: str,
) -> Delivery:
    delivery = await get_delivery(session, actor, delivery_id)
    transition = await order_flows.change_status(
        session,
        outbox,
        locale=locale,
        actor=actor,
        order=delivery,
        identity=identity_of(delivery),
        change=change,
        event_data={"courier_id": delivery.courier_id, "external_id_1c": delivery.external_id_1c},
    )
    _hand_off_to_1c(session, outbox, delivery, transition, actor, change.note)
    return delivery


async def events(
    session: Executor, actor: Actor, delivery_id: int, request: PageRequest
) -> Paginated[TaskEventRead]:
    missing = f"Delivery {delivery_id} not found."
    repo = DeliveryRepository(session)
    return await reads.history_page(repo, actor, delivery_id, request, missing=missing)
