from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from b24mw.couriers import service
from b24mw.couriers.schemas import COURIER_CURSOR, CourierCreate, CourierRead, CourierUpdate
from b24mw.deps import ReadSessionDep, ReadStatementsDep, WriteSessionDep
from b24mw.kit.auth import Actor, Role, require
from b24mw.kit.pagination import PageRequest, Paginated, pagination
from b24mw.kit.routing import ApiRoute
from b24mw.kit.schemas import COMMON_ERRORS, answer
from b24mw.kit.types import QueryFlag, QueryId

router = APIRouter(
    route_class=ApiRoute, prefix="/ww/couriers", tags=["couriers"], responses=COMMON_ERRORS
)

Reader = Annotated[Actor, Depends(require(Role.COURIER, Role.ADMIN))]
Admin = Annotated[Actor, Depends(require(Role.ADMIN))]
Pages = Annotated[PageRequest, Depends(pagination(COURIER_CURSOR))]


@router.get("", response_model=Paginated[CourierRead])
async def list_couriers(
    session: ReadStatementsDep,
    actor: Reader,
    page: Pages,
    q: Annotated[str | None, Query(max_length=100, description="search id, name, phone")] = None,
    b24_user_id: Annotated[QueryId | None, Query()] = None,
    is_active: Annotated[QueryFlag | None, Query(description="true or false")] = None,
) -> Response:
    """List couriers, by id. A courier sees only their own record."""
    found = await service.search(
        session, actor, page, q=q, b24_user_id=b24_user_id, is_active=is_active
    )
    return answer(found)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CourierRead)
async def create_courier(
    body: CourierCreate, session: WriteSessionDep, _: Admin, response: Response
) -> CourierRead:
    """Register a courier. A duplicate id or Bitrix24 user is a 409."""
    courier = await service.create(session, body)
    response.headers["Location"] = f"/api/v1/ww/couriers/{courier.id}"
    return CourierRead.model_validate(courier)


@router.get("/{courier_id}", response_model=CourierRead)
async def get_courier(courier_id: str, session: ReadSessionDep, _: Admin) -> CourierRead:
    """One courier."""
    return CourierRead.model_validate(await service.get(session, courier_id))


@router.patch("/{courier_id}", response_model=CourierRead)
async def update_courier(
    courier_id: str, body: CourierUpdate, session: WriteSessionDep, _: Admin
) -> CourierRead:
    """Change name, phone, active flag or Bitrix24 user mapping."""
    return CourierRead.model_validate(await service.update(session, courier_id, body))
