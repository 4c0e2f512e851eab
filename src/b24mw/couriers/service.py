from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.couriers.repository import CourierRepository
from b24mw.couriers.schemas import CourierCreate, CourierRead, CourierUpdate
from b24mw.kit.auth import Actor
from b24mw.kit.db import Executor
from b24mw.kit.errors import Conflict, FieldError, NotFound
from b24mw.kit.pagination import PageRequest, Paginated, paginated
from b24mw.models.couriers import Courier


async def _ensure_b24_user_free(repo: CourierRepository, b24_user_id: int, courier_id: str) -> None:
    holder = await repo.by_b24_user(b24_user_id)
    if holder is not None and holder.id != courier_id:
        raise Conflict(
            f"Bitrix24 user {b24_user_id} is already mapped to courier {holder.id}.",
            errors=[FieldError("b24_user_id", f"already mapped to courier {holder.id}")],
        )


async def create(session: AsyncSession, data: CourierCreate) -> Courier:
    repo = CourierRepository(session)
    if await repo.get(data.id) is not None:
        raise Conflict(
            f"Courier {data.id} already exists.",
            errors=[FieldError("id", "a courier with this id already exists")],
        )
    if data.b24_user_id is not None:
        await _ensure_b24_user_free(repo, data.b24_user_id, data.id)
    courier = Courier(**data.model_dump())
    repo.add(courier)
    try:
        await session.flush()
    except IntegrityError:
        # A concurrent create won the race between our check and the insert.
        raise Conflict(f"Courier {data.id} or its Bitrix24 user already exists.") from None
    return courier


async def get(session: AsyncSession, courier_id: str) -> Courier:
    courier = await CourierRepository(session).get(courier_id)
    if courier is None:
        raise NotFound(f"Courier {courier_id} not found.")
    return courier


async def update(session: AsyncSession, courier_id: str, data: CourierUpdate) -> Courier:
    repo = CourierRepository(session)
    courier = await get(session, courier_id)
    changes = data.model_dump(exclude_unset=True)
    if changes.get("display_name", "") is None:
        changes.pop("display_name")
    if changes.get("is_active", False) is None:
        changes.pop("is_active")
    if changes.get("b24_user_id") is not None:
        await _ensure_b24_user_free(repo, changes["b24_user_id"], courier_id)
    for field, value in changes.items():
        setattr(courier, field, value)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("The Bitrix24 user is already mapped to another courier.") from None
    return courier


async def search(
    session: Executor,
    actor: Actor,
    request: PageRequest,
    *,
    q: str | None,
    b24_user_id: int | None,
    is_active: bool | None,
) -> Paginated[CourierRead]:
    page = await CourierRepository(session).search(
        request,
        q=q,
        only_id=actor.sub if actor.courier_scoped else None,
        b24_user_id=b24_user_id,
        is_active=is_active,
    )
    return paginated(CourierRead, page, request)


async def by_b24_user(session: AsyncSession, b24_user_id: int) -> Courier | None:
    """Map a Bitrix24 ``RESPONSIBLE_ID``/author to the courier (the other way is
    ``Courier.b24_user_id``)."""
    return await CourierRepository(session).by_b24_user(b24_user_id)


async def find(session: AsyncSession, courier_id: str) -> Courier | None:
    """The courier or None, for callers that answer a missing courier their own
    way (e.g. 422 on an order that names one)."""
    return await CourierRepository(session).get(courier_id)
