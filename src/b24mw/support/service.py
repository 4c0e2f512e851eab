"""Reading chats and linking them by hand; who may see which chat."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.kit.auth import Actor
from b24mw.kit.errors import FieldError, NotFound, ValidationFailed
from b24mw.kit.pagination import PageRequest, Paginated
from b24mw.models.enums import LinkSource, LinkTarget
from b24mw.models.orders import Delivery, InstantOrder
from b24mw.models.returns import Return
from b24mw.models.support import ChatSession
from b24mw.support import flows
from b24mw.support.repository import SessionFilter, SupportRepository
from b24mw.support.schemas import (
    ChatLinkCreate,
    ChatLinkRead,
    ChatMessageRead,
    ChatSessionDetail,
    ChatSessionRead,
)


async def _courier_targets(db: AsyncSession, courier_id: str) -> list[tuple[LinkTarget, str]]:
    """What a courier may read chats of: their own orders, deliveries and returns."""
    orders = (
        await db.execute(select(InstantOrder.id).where(InstantOrder.courier_id == courier_id))
    ).scalars()
    deliveries = (
        await db.execute(select(Delivery.id).where(Delivery.courier_id == courier_id))
    ).scalars()
    returns = (await db.execute(select(Return.id).where(Return.courier_id == courier_id))).scalars()
    return (
        [(LinkTarget.INSTANT_ORDER, str(i)) for i in orders]
        + [(LinkTarget.DELIVERY, str(i)) for i in deliveries]
        + [(LinkTarget.RETURN, str(i)) for i in returns]
    )


async def _with_links(
    db: AsyncSession, rows: Collection[ChatSession | dict[str, Any]]
) -> list[ChatSessionRead]:
    ids = [r["id"] if isinstance(r, dict) else r.id for r in rows]
    links = await SupportRepository(db).links(ids)
    by_session: dict[int, list[ChatLinkRead]] = {}
    for link in links:
        by_session.setdefault(link.session_id, []).append(ChatLinkRead.model_validate(link))
    out = []
    for row, session_id in zip(rows, ids, strict=True):
        item = ChatSessionRead.model_validate(row)
        item.links = by_session.get(session_id, [])
        out.append(item)
    return out


async def search(
    db: AsyncSession, actor: Actor, request: PageRequest, filters: SessionFilter
) -> Paginated[ChatSessionRead]:
    if actor.courier_scoped:
        filters = _scoped(filters, await _courier_targets(db, actor.sub))
    page = await SupportRepository(db).search(request, filters)
    return Paginated[ChatSessionRead].build(await _with_links(db, page.rows), page, request)


def _scoped(filters: SessionFilter, targets: list[tuple[LinkTarget, str]]) -> SessionFilter:
    return SessionFilter(
        status=filters.status,
        line_id=filters.line_id,
        target_kind=filters.target_kind,
        target_id=filters.target_id,
        opened_from=filters.opened_from,
        opened_to=filters.opened_to,
        q=filters.q,
        visible_targets=targets,
    )


async def _visible(db: AsyncSession, actor: Actor, session_id: int) -> ChatSession:
    row = await SupportRepository(db).get(session_id)
    if row is None:
        raise NotFound("no such chat session")
    if actor.courier_scoped:
        targets = set(await _courier_targets(db, actor.sub))
        links = await SupportRepository(db).links([row.id])
        if not any((link.target_kind, link.target_id) in targets for link in links):
            raise NotFound("no such chat session")  # not theirs: as if absent
    return row


async def get(
    db: AsyncSession, actor: Actor, session_id: int, request: PageRequest
) -> ChatSessionDetail:
    row = await _visible(db, actor, session_id)
    [base] = await _with_links(db, [row])
    page = await SupportRepository(db).messages(request, row.id)
    return ChatSessionDetail(
        **base.model_dump(),
        messages=Paginated[ChatMessageRead].build(
            [ChatMessageRead.model_validate(m) for m in page.rows], page, request
        ),
    )


def _row_id(text: str) -> int:
    """A positive id that fits a BIGINT; ValueError otherwise."""
    value = int(text)
    if not 0 < value < 2**63:
        raise ValueError(text)
    return value


async def _target_exists(db: AsyncSession, kind: LinkTarget, target: str) -> str:
    """The target's canonical id; 422 naming ``target_id`` when it is not one."""
    repo = SupportRepository(db)
    found: set[Any]
    try:
        if kind is LinkTarget.RETURN:
            value: Any = uuid.UUID(target)
            found = await repo.existing_returns({value})
        elif kind is LinkTarget.DEAL:
            value = _row_id(target)
            # Deals live in Bitrix24 (issue 16): any positive id may be linked.
            return str(value)
        else:
            value = _row_id(target)
            getter = (
                repo.existing_instant_orders
                if kind is LinkTarget.INSTANT_ORDER
                else repo.existing_deliveries
            )
            found = await getter({value})
    except ValueError:
        found, value = set(), None
    if value is None or value not in found:
        raise ValidationFailed(
            "no such target",
            errors=[FieldError("target_id", f"no {kind.value} with this id")],
        )
    return str(value)


async def link(
    db: AsyncSession, actor: Actor, session_id: int, body: ChatLinkCreate
) -> ChatSessionRead:
    row = await _visible(db, actor, session_id)
    target = await _target_exists(db, body.target_kind, body.target_id)
    await flows.add_link(db, row, body.target_kind, target, LinkSource.MANUAL, actor_id=actor.sub)
    [out] = await _with_links(db, [row])
    return out


async def unlink(
    db: AsyncSession, actor: Actor, session_id: int, kind: LinkTarget, target: str
) -> None:
    row = await _visible(db, actor, session_id)
    link = await SupportRepository(db).link(row.id, kind, target)
    if link is None:
        raise NotFound("the session is not linked to this target")
    await flows.remove_link(db, row, link, actor_id=actor.sub)


async def chats_of(
    db: AsyncSession, actor: Actor, kind: LinkTarget, target: str, page: PageRequest
) -> Paginated[ChatSessionRead]:
    return await search(db, actor, page, SessionFilter(target_kind=kind, target_id=target))
