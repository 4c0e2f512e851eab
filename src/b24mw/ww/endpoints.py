from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from b24mw.deps import Locale, OutboxDep, ReadStatementsDep, WriteSessionDep
from b24mw.kit.auth import Actor, Role, require
from b24mw.kit.pagination import PageRequest, Paginated, pagination
from b24mw.kit.routing import ApiRoute
from b24mw.kit.schemas import COMMON_ERRORS, answer
from b24mw.kit.types import RowId
from b24mw.orders.deps import order_filter
from b24mw.orders.schemas import OrderFilter, StatusChange, TaskEventRead
from b24mw.ww import service
from b24mw.ww.schemas import (
    ORDER_CURSOR,
    ORDER_EVENTS_CURSOR,
    OrderAssign,
    OrderCreate,
    OrderRead,
    OrderUpdate,
)

router = APIRouter(
    route_class=ApiRoute, prefix="/ww/orders", tags=["ww orders"], responses=COMMON_ERRORS
)

CourierOrAdmin = Annotated[Actor, Depends(require(Role.COURIER, Role.ADMIN))]
StatusActor = Annotated[Actor, Depends(require(Role.COURIER, Role.ADMIN, Role.ONEC))]
ListFilter = Annotated[OrderFilter, Depends(order_filter("title, customer, phone, id or task id"))]
Pages = Annotated[PageRequest, Depends(pagination(ORDER_CURSOR))]
EventPages = Annotated[PageRequest, Depends(pagination(ORDER_EVENTS_CURSOR))]


@router.get("", response_model=Paginated[OrderRead])
async def list_orders(
    session: ReadStatementsDep,
    actor: CourierOrAdmin,
    filters: ListFilter,
    page: Pages,
) -> Response:
    """Orders, newest first. A courier sees only their own. By page, or after
    `cursor` (`next_cursor` of the previous page) at any depth."""
    return answer(await service.list_orders(session, actor, page, filters))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=OrderRead)
async def create_order(
    body: OrderCreate,
    session: WriteSessionDep,
    outbox: OutboxDep,
    actor: CourierOrAdmin,
) -> Response:
    """Create an order (status NEW). The total is computed from the lines; a
    second order for the same Bitrix24 task and courier is a 409 naming the
    existing one (`existing_id`)."""
    order = await service.create_order(session, outbox, actor, body)
    location = {"Location": f"/api/v1/ww/orders/{order.id}"}
    return answer(OrderRead.model_validate(order), status.HTTP_201_CREATED, location)


@router.get("/{order_id}", response_model=OrderRead)
async def get_order(order_id: RowId, session: ReadStatementsDep, actor: CourierOrAdmin) -> Response:
    """One order."""
    return answer(OrderRead.model_validate(await service.read_order(session, actor, order_id)))


@router.patch("/{order_id}", response_model=OrderRead)
async def update_order(
    order_id: RowId, body: OrderUpdate, session: WriteSessionDep, actor: CourierOrAdmin
) -> OrderRead:
    """Replace the lines (the whole list) and/or the notes while the order is NEW."""
    return OrderRead.model_validate(await service.update_order(session, actor, order_id, body))


@router.post("/{order_id}/assign", response_model=OrderRead)
async def assign_order(
    order_id: RowId,
    body: OrderAssign,
    session: WriteSessionDep,
    outbox: OutboxDep,
    actor: CourierOrAdmin,
    locale: Locale,
) -> OrderRead:
    """Assign a courier (or null) before pick-up. `decline: true` records that
    the current courier refused; a courier may only decline their own order."""
    order = await service.assign(session, outbox, actor, order_id, body, locale=locale)
    return OrderRead.model_validate(order)


@router.post("/{order_id}/status", response_model=OrderRead)
async def change_status(
    order_id: RowId,
    body: StatusChange,
    session: WriteSessionDep,
    outbox: OutboxDep,
    actor: StatusActor,
    locale: Locale,
) -> OrderRead:
    """Move the order through the status matrix (422 for a move it does not
    have, 403 for a role that may not make it, 409 when a concurrent change
    won). Writes the history and the Bitrix24 sync jobs."""
    order = await service.change_status(session, outbox, actor, order_id, body, locale=locale)
    return OrderRead.model_validate(order)


@router.get("/{order_id}/events", response_model=Paginated[TaskEventRead])
async def order_events(
    order_id: RowId, session: ReadStatementsDep, actor: CourierOrAdmin, page: EventPages
) -> Response:
    """The order's task history (`task_events`), oldest first."""
    return answer(await service.events(session, actor, order_id, page))
