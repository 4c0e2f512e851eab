from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from b24mw.deliveries import service
from b24mw.deliveries.schemas import (
    DELIVERY_CURSOR,
    DELIVERY_EVENTS_CURSOR,
    DeliveryCreate,
    DeliveryRead,
)
from b24mw.deps import Locale, OutboxDep, ReadSessionDep, ReadStatementsDep, WriteSessionDep
from b24mw.kit.auth import Actor, Role, require
from b24mw.kit.pagination import PageRequest, Paginated, pagination
from b24mw.kit.routing import ApiRoute
from b24mw.kit.schemas import COMMON_ERRORS, answer
from b24mw.kit.types import RowId
from b24mw.orders.deps import order_filter
from b24mw.orders.schemas import OrderFilter, StatusChange, TaskEventRead

router = APIRouter(
    route_class=ApiRoute, prefix="/deliveries", tags=["deliveries"], responses=COMMON_ERRORS
)

Writer = Annotated[Actor, Depends(require(Role.ONEC, Role.ADMIN))]
# Couriers carry deliveries: the matrix gives them the moves from pick-up on,
# so they read and move their own.
Participant = Annotated[Actor, Depends(require(Role.ONEC, Role.ADMIN, Role.COURIER))]
ListFilter = Annotated[
    OrderFilter, Depends(order_filter("1C id, title, customer, phone, id or task id"))
]
Pages = Annotated[PageRequest, Depends(pagination(DELIVERY_CURSOR))]
EventPages = Annotated[PageRequest, Depends(pagination(DELIVERY_EVENTS_CURSOR))]


@router.get("", response_model=Paginated[DeliveryRead])
async def list_deliveries(
    session: ReadStatementsDep,
    actor: Participant,
    filters: ListFilter,
    page: Pages,
) -> Response:
    """Deliveries, newest first. A courier sees only their own. By page, or
    after `cursor` (`next_cursor` of the previous page) at any depth."""
    return answer(await service.list_deliveries(session, actor, page, filters))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DeliveryRead)
async def create_delivery(
    body: DeliveryCreate,
    session: WriteSessionDep,
    outbox: OutboxDep,
    actor: Writer,
    locale: Locale,
    response: Response,
) -> DeliveryRead:
    """Register a 1C delivery and queue the courier's Bitrix24 task; the task
    id appears on the delivery once Bitrix24 has answered. A repeated
    `external_id_1c` is a 409 naming the existing delivery (`existing_id`)."""
    delivery = await service.create_delivery(session, outbox, actor, body, locale=locale)
    response.headers["Location"] = f"/api/v1/deliveries/{delivery.id}"
    return DeliveryRead.model_validate(delivery)


@router.get("/{delivery_id}", response_model=DeliveryRead)
async def get_delivery(
    delivery_id: RowId, session: ReadSessionDep, actor: Participant
) -> DeliveryRead:
    """One delivery."""
    return DeliveryRead.model_validate(await service.get_delivery(session, actor, delivery_id))


@router.post("/{delivery_id}/status", response_model=DeliveryRead)
async def change_status(
    delivery_id: RowId,
    body: StatusChange,
    session: WriteSessionDep,
    outbox: OutboxDep,
    actor: Participant,
    locale: Locale,
) -> DeliveryRead:
    """Move the delivery through the status matrix of Walking Warehouse orders,
    with the same Bitrix24 sync, and hand the new status to 1C."""
    delivery = await service.change_status(session, outbox, actor, delivery_id, body, locale=locale)
    return DeliveryRead.model_validate(delivery)


@router.get("/{delivery_id}/events", response_model=Paginated[TaskEventRead])
async def delivery_events(
    delivery_id: RowId, session: ReadStatementsDep, actor: Participant, page: EventPages
) -> Response:
    """The delivery's task history (`task_events`), oldest first."""
    return answer(await service.events(session, actor, delivery_id, page))
