"""Customer chats: ``/support/sessions`` and the ``/chats`` of returns, orders
and deliveries."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from b24mw.deps import ReadSessionDep, WriteSessionDep
from b24mw.kit.auth import Actor, Role, require
from b24mw.kit.pagination import PageRequest, Paginated, pagination
from b24mw.kit.routing import ApiRoute
from b24mw.kit.schemas import COMMON_ERRORS
from b24mw.kit.types import Rfc3339, RowId
from b24mw.models.enums import ChatStatus, LinkTarget
from b24mw.support import service
from b24mw.support.repository import SessionFilter
from b24mw.support.schemas import (
    MESSAGE_CURSOR,
    SESSION_CURSOR,
    ChatLinkCreate,
    ChatSessionDetail,
    ChatSessionRead,
)

router = APIRouter(route_class=ApiRoute, tags=["support"], responses=COMMON_ERRORS)

Reader = Annotated[Actor, Depends(require(Role.ONEC, Role.COURIER, Role.ADMIN))]
Admin = Annotated[Actor, Depends(require(Role.ADMIN))]
SessionPages = Annotated[PageRequest, Depends(pagination(SESSION_CURSOR))]
MessagePages = Annotated[PageRequest, Depends(pagination(MESSAGE_CURSOR))]


@router.get("/support/sessions", response_model=Paginated[ChatSessionRead])
async def list_sessions(
    session: ReadSessionDep,
    actor: Reader,
    page: SessionPages,
    status_: Annotated[
        list[ChatStatus], Query(alias="status", description="repeat for several")
    ] = [],  # noqa: B006 (FastAPI copies query defaults)
    line_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    target_kind: Annotated[LinkTarget | None, Query(description="linked to this kind")] = None,
    target_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    opened_from: Annotated[Rfc3339 | None, Query(description="RFC 3339, inclusive")] = None,
    opened_to: Annotated[Rfc3339 | None, Query(description="RFC 3339, exclusive")] = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=200, description="text in messages")
    ] = None,
) -> Paginated[ChatSessionRead]:
    """Customer chat sessions, newest first (as b24mw learnt of them). Admin and
    1C read all; a courier reads the chats linked to their own orders,
    deliveries and returns."""
    filters = SessionFilter(
        status=status_,
        line_id=line_id,
        target_kind=target_kind,
        target_id=target_id if target_kind else None,
        opened_from=opened_from,
        opened_to=opened_to,
        q=q,
    )
    return await service.search(session, actor, page, filters)


@router.get("/support/sessions/{session_id}", response_model=ChatSessionDetail)
async def get_session(
    session_id: RowId,
    session: ReadSessionDep,
    actor: Reader,
    page: MessagePages,
) -> ChatSessionDetail:
    """One session with its links and its messages (oldest first, paginated)."""
    return await service.get(session, actor, session_id, page)


@router.post(
    "/support/sessions/{session_id}/links",
    status_code=status.HTTP_201_CREATED,
    response_model=ChatSessionRead,
)
async def add_link(
    session_id: RowId, body: ChatLinkCreate, session: WriteSessionDep, actor: Admin
) -> ChatSessionRead:
    """Link the session to a return, order, delivery or deal by hand (admin).
    Linking twice keeps one link."""
    return await service.link(session, actor, session_id, body)


@router.delete(
    "/support/sessions/{session_id}/links/{target_kind}/{target_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def remove_link(
    session_id: RowId,
    target_kind: LinkTarget,
    target_id: str,
    session: WriteSessionDep,
    actor: Admin,
) -> Response:
    """Unlink (admin); the target's history records it."""
    await service.unlink(session, actor, session_id, target_kind, target_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/returns/{return_id}/chats", response_model=Paginated[ChatSessionRead])
async def return_chats(
    return_id: uuid.UUID, session: ReadSessionDep, actor: Reader, page: SessionPages
) -> Paginated[ChatSessionRead]:
    """Customer chats linked to the return."""
    return await service.chats_of(session, actor, LinkTarget.RETURN, str(return_id), page)


@router.get("/ww/orders/{order_id}/chats", response_model=Paginated[ChatSessionRead])
async def order_chats(
    order_id: RowId, session: ReadSessionDep, actor: Reader, page: SessionPages
) -> Paginated[ChatSessionRead]:
    """Customer chats linked to the instant order."""
    return await service.chats_of(session, actor, LinkTarget.INSTANT_ORDER, str(order_id), page)


@router.get("/deliveries/{delivery_id}/chats", response_model=Paginated[ChatSessionRead])
async def delivery_chats(
    delivery_id: RowId, session: ReadSessionDep, actor: Reader, page: SessionPages
) -> Paginated[ChatSessionRead]:
    """Customer chats linked to the delivery."""
    return await service.chats_of(session, actor, LinkTarget.DELIVERY, str(delivery_id), page)
