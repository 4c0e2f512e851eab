"""SQL for chat sessions, their messages and links."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, exists, false, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from b24mw.kit.listing import Keyset
from b24mw.kit.pagination import Page, PageRequest
from b24mw.kit.repository import ModelRepository, in_window
from b24mw.models.base import table_of
from b24mw.models.enums import ChatStatus, LinkTarget
from b24mw.models.orders import Delivery, InstantOrder
from b24mw.models.returns import Return
from b24mw.models.support import ChatLink, ChatMessage, ChatSession

SESSIONS, MESSAGES = table_of(ChatSession), table_of(ChatMessage)
# Sessions newest first by our id (the order b24mw learnt of them; opened_at
# may be unknown until the first read); messages in Bitrix24's order.
SESSIONS_KEYSET = Keyset((SESSIONS.c.id,), descending=True)
MESSAGES_KEYSET = Keyset((MESSAGES.c.b24_message_id,), descending=False)


@dataclass(frozen=True, slots=True)
class SessionFilter:
    status: Collection[ChatStatus] = ()
    line_id: int | None = None
    target_kind: LinkTarget | None = None
    target_id: str | None = None
    opened_from: datetime | None = None
    opened_to: datetime | None = None
    q: str | None = None
    # A courier: only sessions linked to these targets (kind, id).
    visible_targets: Collection[tuple[LinkTarget, str]] | None = None


class SupportRepository(ModelRepository[ChatSession]):
    """Chat sessions (``get``/``add`` by id), their messages and links."""

    __slots__ = ()
    model = ChatSession

    # Sessions -----------------------------------------------------------

    async def by_b24_id(self, b24_session_id: int, *, lock: bool = False) -> ChatSession | None:
        stmt = select(ChatSession).where(ChatSession.b24_session_id == b24_session_id)
        if lock:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def by_chat_id(self, chat_id: int) -> Sequence[ChatSession]:
        stmt = select(ChatSession).where(ChatSession.chat_id == chat_id)
        return (await self.session.execute(stmt)).scalars().all()

    async def add_session(self, row: ChatSession) -> ChatSession:
        """Insert, or return the row another worker inserted first."""
        try:
            async with self.unit.begin_nested():
                self.unit.add(row)
                await self.unit.flush()
        except IntegrityError:
            existing = await self.by_b24_id(row.b24_session_id)
            assert existing is not None
            return existing
        return row

    async def reads_due(self, limit: int) -> Sequence[ChatSession]:
        stmt = (
            select(ChatSession)
            .where(ChatSession.read_due.is_(True))
            .order_by(ChatSession.checked_at.is_not(None), ChatSession.checked_at, ChatSession.id)
            .limit(limit)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def checks_due(self, before: datetime, limit: int) -> Sequence[ChatSession]:
        """Open sessions not checked since ``before``, least recently checked first."""
        stmt = (
            select(ChatSession)
            .where(
                ChatSession.status == ChatStatus.OPEN,
                ChatSession.read_due.is_(False),
                or_(ChatSession.checked_at.is_(None), ChatSession.checked_at < before),
            )
            .order_by(ChatSession.checked_at.is_not(None), ChatSession.checked_at, ChatSession.id)
            .limit(limit)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def mark_checked(self, ids: Collection[int], at: datetime) -> None:
        if ids:
            await self.session.execute(
                update(ChatSession).where(ChatSession.id.in_(ids)).values(checked_at=at)
            )

    async def last_round(self) -> datetime | None:
        """When any worker last claimed sessions (one index probe per status)."""
        latest: datetime | None = None
        for status in (ChatStatus.OPEN, ChatStatus.CLOSED):
            stmt = select(func.max(ChatSession.checked_at)).where(ChatSession.status == status)
            value = (await self.session.execute(stmt)).scalar_one_or_none()
            if isinstance(value, str):  # SQLite's max() loses the column type
                value = datetime.fromisoformat(value)
            if value is not None and value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            if value is not None and (latest is None or value > latest):
                latest = value
        return latest

    async def open_count(self) -> int:
        stmt = select(func.count()).where(ChatSession.status == ChatStatus.OPEN)
        return int((await self.session.execute(stmt)).scalar_one())

    async def search(self, request: PageRequest, filters: SessionFilter) -> Page[dict[str, Any]]:
        conditions: list[Any] = []
        if filters.status:
            conditions.append(ChatSession.status.in_(list(filters.status)))
        if filters.line_id is not None:
            conditions.append(ChatSession.line_id == filters.line_id)
        if filters.target_kind is not None:
            link = and_(
                ChatLink.session_id == ChatSession.id, ChatLink.target_kind == filters.target_kind
            )
            if filters.target_id is not None:
                link = and_(link, ChatLink.target_id == filters.target_id)
            conditions.append(exists().where(link))
        if filters.visible_targets is not None:
            pairs = [
                and_(ChatLink.target_kind == kind, ChatLink.target_id == target)
                for kind, target in filters.visible_targets
            ]
            if not pairs:
                conditions.append(false())
            conditions.append(
                exists().where(and_(ChatLink.session_id == ChatSession.id, or_(*pairs)))
            )
        if filters.q:
            pattern = (
                "%" + filters.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            )
            conditions.append(
                exists().where(
                    ChatMessage.session_id == ChatSession.id,
                    func.lower(ChatMessage.text_plain).like(pattern.lower(), escape="\\"),
                )
            )
        branch = select(SESSIONS).where(*conditions)
        branch = in_window(branch, SESSIONS.c.opened_at, filters.opened_from, filters.opened_to)
        return await self.page(request, SESSIONS_KEYSET, [branch])

    # Messages -----------------------------------------------------------

    async def known_message_ids(self, ids: Collection[int]) -> set[int]:
        if not ids:
            return set()
        stmt = select(ChatMessage.b24_message_id).where(ChatMessage.b24_message_id.in_(list(ids)))
        return set((await self.session.execute(stmt)).scalars().all())

    def add_message(self, row: ChatMessage) -> None:
        self.unit.add(row)

    async def messages(self, request: PageRequest, session_id: int) -> Page[dict[str, Any]]:
        branch = select(MESSAGES).where(MESSAGES.c.session_id == session_id)
        return await self.page(request, MESSAGES_KEYSET, [branch])

    # Links --------------------------------------------------------------

    async def links(self, session_ids: Collection[int]) -> Sequence[ChatLink]:
        if not session_ids:
            return []
        stmt = (
            select(ChatLink)
            .where(ChatLink.session_id.in_(list(session_ids)))
            .order_by(ChatLink.session_id, ChatLink.id)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def link(self, session_id: int, kind: LinkTarget, target: str) -> ChatLink | None:
        stmt = select(ChatLink).where(
            ChatLink.session_id == session_id,
            ChatLink.target_kind == kind,
            ChatLink.target_id == target,
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def add_link(self, row: ChatLink) -> bool:
        """False when the session is already linked to that target."""
        if await self.link(row.session_id, row.target_kind, row.target_id) is not None:
            return False
        try:
            async with self.unit.begin_nested():
                self.unit.add(row)
                await self.unit.flush()
        except IntegrityError:
            return False
        return True

    async def delete_link(self, link: ChatLink) -> None:
        await self.unit.delete(link)
        await self.unit.flush()

    # Targets ------------------------------------------------------------

    async def existing_instant_orders(self, ids: Collection[int]) -> set[int]:
        if not ids:
            return set()
        stmt = select(InstantOrder.id).where(InstantOrder.id.in_(list(ids)))
        return set((await self.session.execute(stmt)).scalars().all())

    async def existing_deliveries(self, ids: Collection[int]) -> set[int]:
        if not ids:
            return set()
        stmt = select(Delivery.id).where(Delivery.id.in_(list(ids)))
        return set((await self.session.execute(stmt)).scalars().all())

    async def serving_deal(self, deal_id: int) -> tuple[list[int], list[int]]:
        """The deliveries and instant orders linked to a Bitrix24 deal (by the
        ``deal_id_b24`` indexes)."""
        deliveries = select(Delivery.id).where(Delivery.deal_id_b24 == deal_id)
        orders = select(InstantOrder.id).where(InstantOrder.deal_id_b24 == deal_id)
        return (
            list((await self.session.execute(deliveries.order_by(Delivery.id))).scalars()),
            list((await self.session.execute(orders.order_by(InstantOrder.id))).scalars()),
        )

    async def deliveries_by_1c(self, numbers: Collection[str]) -> dict[str, int]:
        if not numbers:
            return {}
        stmt = select(Delivery.external_id_1c, Delivery.id).where(
            Delivery.external_id_1c.in_(list(numbers))
        )
        return {str(k): int(v) for k, v in (await self.session.execute(stmt)).all()}

    async def existing_returns(self, ids: Collection[Any]) -> set[Any]:
        if not ids:
            return set()
        stmt = select(Return.id).where(Return.id.in_(list(ids)))
        return set((await self.session.execute(stmt)).scalars().all())
