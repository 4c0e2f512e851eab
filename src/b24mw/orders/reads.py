"""The reads both order kinds answer alike: the list a courier sees only
their own part of, and an order's history behind the same 404 as the order."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, TypeVar

from b24mw.kit.auth import Actor
from b24mw.kit.pagination import PageRequest, Paginated, paginated
from b24mw.kit.schemas import ReadModel
from b24mw.orders.repository import OrderKindRepository
from b24mw.orders.schemas import OrderFilter, TaskEventRead
from b24mw.orders.scope import own_courier_id, visible

R = TypeVar("R", bound=ReadModel)


async def list_page(
    repo: OrderKindRepository[Any],
    actor: Actor,
    request: PageRequest,
    filters: OrderFilter,
    read: type[R],
    *,
    refusal: str,
) -> Paginated[R]:
    """A page of the kind's list, each order with its lines; a courier's
    list is their own (``refusal`` when they ask for another's)."""
    mine = own_courier_id(actor, filters.courier_id, refusal)
    page = await repo.search(request, replace(filters, courier_id=mine))
    return paginated(read, page, request)


async def history_page(
    repo: OrderKindRepository[Any],
    actor: Actor,
    key: int,
    request: PageRequest,
    *,
    missing: str,
) -> Paginated[TaskEventRead]:
    """A page of the order's history, if the actor may see the order."""
    found = await repo.events(request, key)
    visible(actor, None if found is None else found[0], missing)
    assert found is not None
    return paginated(TaskEventRead, found[1], request)
