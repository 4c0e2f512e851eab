from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from b24mw.couriers.schemas import CourierId
from b24mw.deps import ReadStatementsDep, ReturnChannelsDep, WriteSessionDep
from b24mw.kit.auth import Actor, Role, require
from b24mw.kit.pagination import PageRequest, Paginated, pagination
from b24mw.kit.routing import ApiRoute
from b24mw.kit.schemas import COMMON_ERRORS, answer
from b24mw.kit.types import Rfc3339
from b24mw.models.enums import ReturnStatus
from b24mw.returns import service
from b24mw.returns.flows import API_PATH
from b24mw.returns.schemas import (
    RETURN_CURSOR,
    ReturnCreate,
    ReturnRead,
    ReturnReplace,
    ReturnUpdate,
)

router = APIRouter(
    route_class=ApiRoute, prefix="/returns", tags=["returns"], responses=COMMON_ERRORS
)

Lister = Annotated[Actor, Depends(require(Role.ONEC, Role.ADMIN))]
Creator = Annotated[Actor, Depends(require(Role.COURIER, Role.ADMIN))]
Reader = Annotated[Actor, Depends(require(Role.ONEC, Role.COURIER, Role.ADMIN))]
Decider = Annotated[Actor, Depends(require(Role.ONEC, Role.ADMIN))]
Admin = Annotated[Actor, Depends(require(Role.ADMIN))]
Pages = Annotated[PageRequest, Depends(pagination(RETURN_CURSOR))]


@router.get("", response_model=Paginated[ReturnRead])
async def list_returns(
    session: ReadStatementsDep,
    _: Lister,
    page: Pages,
    status_: Annotated[
        list[ReturnStatus], Query(alias="status", description="repeat for several")
    ] = [],  # noqa: B006 (FastAPI copies query defaults)
    courier_id: Annotated[CourierId | None, Query()] = None,
    created_from: Annotated[Rfc3339 | None, Query(description="RFC 3339, inclusive")] = None,
    created_to: Annotated[Rfc3339 | None, Query(description="RFC 3339, inclusive")] = None,
) -> Response:
    """Returns, newest first. For 1C and administrators. By page, or after
    `cursor` (`next_cursor` of the previous page) at any depth."""
    found = await service.search(
        session,
        page,
        statuses=status_,
        courier_id=courier_id,
        created_from=created_from,
        created_to=created_to,
    )
    return answer(found)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ReturnRead)
async def create_return(
    body: ReturnCreate, session: WriteSessionDep, actor: Creator, channels: ReturnChannelsDep
) -> Response:
    """Start a return. A courier may start one only for themselves (another
    ``courier_id`` → 403). Bitrix24, 1C and event consumers are told after the commit."""
    created = await service.create(session, channels, actor, body)
    return answer(created, status.HTTP_201_CREATED, {"Location": f"{API_PATH}/{created.id}"})


@router.get("/{return_id}", response_model=ReturnRead)
async def get_return(return_id: uuid.UUID, session: ReadStatementsDep, actor: Reader) -> Response:
    """One return. A courier sees only their own (others are 404)."""
    return answer(await service.read(session, actor, return_id))


@router.put("/{return_id}", response_model=ReturnRead)
async def replace_return(
    return_id: uuid.UUID, body: ReturnReplace, session: WriteSessionDep, actor: Decider
) -> ReturnRead:
    """Replace a ``pending`` return as a whole (a decided one → 422 ``conflict.transition``)."""
    return ReturnRead.model_validate(await service.replace(session, actor, return_id, body))


@router.patch("/{return_id}", response_model=ReturnRead)
async def update_return(
    return_id: uuid.UUID,
    body: ReturnUpdate,
    session: WriteSessionDep,
    actor: Decider,
    channels: ReturnChannelsDep,
) -> ReturnRead:
    """1C's (or a manager's) decision: ``status`` accepted | rejected | cancelled from
    ``pending`` only, and/or ``comment``, ``manager_id``. Of two concurrent decisions
    one wins; the other gets 409 ``conflict.concurrent_update``."""
    ret = await service.update(
        session, channels, actor, return_id, body, endpoint=f"PATCH {API_PATH}/{{id}}"
    )
    return ReturnRead.model_validate(ret)


@router.delete("/{return_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def cancel_return(
    return_id: uuid.UUID, session: WriteSessionDep, actor: Admin, channels: ReturnChannelsDep
) -> Response:
    """Cancel a ``pending`` return. Logical: it stays, with status ``cancelled``."""
    await service.cancel(session, channels, actor, return_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
