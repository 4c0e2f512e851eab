"""The only place the webhook flow builds SQL: the inbox, task reads and the
sync cursors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.models.enums import InboxStatus, TaskEventType
from b24mw.models.history import HistoryEntry
from b24mw.models.ops import WebhookInbox
from b24mw.models.orders import Delivery, InstantOrder
from b24mw.webhooks.models import SyncCursor, TaskRead


@dataclass(frozen=True, slots=True)
class Link:
    """An order of ours behind a Bitrix24 task (an instant order or a delivery)."""

    instant_order_id: int | None = None
    order_id: int | None = None

    @property
    def key(self) -> str:
        return f"io{self.instant_order_id}" if self.instant_order_id else f"d{self.order_id}"


@dataclass(frozen=True, slots=True)
class LastRead:
    changed_date: str
    portal_read_at: datetime | None


_INBOX = cast(Table, WebhookInbox.__table__)
# Core statements built once: the ORM insert path costs more than the work.
_PG_INBOX_INSERT = (
    pg_insert(_INBOX).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(_INBOX.c.id)
)
_SQLITE_INBOX_INSERT = (
    sqlite_insert(_INBOX)
    .on_conflict_do_nothing(index_elements=["dedupe_key"])
    .returning(_INBOX.c.id)
)


class WebhookRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def _is_postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    def _insert(self, table: Any) -> Any:
        return (pg_insert if self._is_postgres else sqlite_insert)(table)

    async def add_if_new(self, values: dict[str, Any]) -> int | None:
        """Insert an inbox row; ``None`` when its dedupe key is already there."""
        table = _PG_INBOX_INSERT if self._is_postgres else _SQLITE_INBOX_INSERT
        return (await self.session.execute(table, values)).scalar_one_or_none()

    async def digest_of(self, dedupe_key: str) -> tuple[bool, str | None]:
        """Whether a row holds this delivery id, and that row's content digest."""
        stmt = select(WebhookInbox.digest).where(WebhookInbox.dedupe_key == dedupe_key)
        row = (await self.session.execute(stmt)).first()
        return (row is not None, row[0] if row is not None else None)

    async def waiting_with_digest(self, digest: str) -> int | None:
        """A row with this content whose read has not started yet."""
        stmt = select(WebhookInbox.id).where(
            WebhookInbox.digest == digest, WebhookInbox.status == InboxStatus.PENDING
        )
        return (await self.session.execute(stmt.limit(1))).scalar_one_or_none()

    async def rows_with_digest(self, digest: str) -> int:
        stmt = select(func.count()).where(WebhookInbox.digest == digest)
        return int((await self.session.execute(stmt)).scalar_one())

    async def claim_due(self, now: datetime, limit: int, lease: timedelta) -> Sequence[int]:
        """Take due rows for this worker: pending ones, and rows of a worker
        that died mid-processing (lease expired)."""
        due = or_(
            (WebhookInbox.status == InboxStatus.PENDING) & (WebhookInbox.next_attempt_at <= now),
            (WebhookInbox.status == InboxStatus.PROCESSING) & (WebhookInbox.lease_until < now),
        )
        stmt = select(WebhookInbox.id).where(due).order_by(WebhookInbox.id).limit(limit)
        if self._is_postgres:
            stmt = stmt.with_for_update(skip_locked=True)
        ids = list((await self.session.execute(stmt)).scalars())
        if ids:
            await self.session.execute(
                update(WebhookInbox)
                .where(WebhookInbox.id.in_(ids))
                .values(
                    status=InboxStatus.PROCESSING,
                    lease_until=now + lease,
                    attempts=WebhookInbox.attempts + 1,
                )
            )
        return ids

    async def get(self, inbox_id: int) -> WebhookInbox | None:
        return await self.session.get(WebhookInbox, inbox_id, populate_existing=True)

    async def cursor(self, name: str) -> str | None:
        row = await self.session.get(SyncCursor, name)
        return row.value if row is not None else None

    async def set_cursor(self, name: str, value: str, now: datetime) -> None:
        stmt = self._insert(SyncCursor).values(name=name, value=value, updated_at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=["name"], set_={"value": value, "updated_at": now}
        )
        await self.session.execute(stmt)

    async def links(self, task_id_b24: int) -> list[Link]:
        instant = select(InstantOrder.id).where(InstantOrder.task_id_b24 == task_id_b24)
        deliveries = select(Delivery.id).where(Delivery.task_id_b24 == task_id_b24)
        found = [Link(instant_order_id=i) for i in (await self.session.execute(instant)).scalars()]
        found += [Link(order_id=i) for i in (await self.session.execute(deliveries)).scalars()]
        return found

    async def open_task_ids(self, after: int, limit: int) -> list[int]:
        """Bitrix24 tasks behind orders or deliveries not yet final, by task id
        after ``after`` (a keyset: reconciliation pages through them)."""
        final = ("DONE", "REFUSED")
        instant = select(InstantOrder.task_id_b24.label("task_id")).where(
            InstantOrder.task_id_b24 > after, InstantOrder.status.not_in(final)
        )
        deliveries = select(Delivery.task_id_b24.label("task_id")).where(
            Delivery.task_id_b24 > after, Delivery.status.not_in(final)
        )
        both = instant.union(deliveries).subquery()
        stmt = select(both.c.task_id).order_by(both.c.task_id).limit(limit)
        return [int(i) for i in (await self.session.execute(stmt)).scalars()]

    async def photo_seen(self, task_id_b24: int, checksum: str) -> bool:
        stmt = select(HistoryEntry.id).where(
            HistoryEntry.photo_checksum == checksum,
            HistoryEntry.task_id_b24 == task_id_b24,
            HistoryEntry.type == TaskEventType.PHOTO,
        )
        return (await self.session.execute(stmt.limit(1))).first() is not None

    async def finish(
        self, inbox_id: int, status: InboxStatus, errors: list[dict[str, Any]], now: datetime
    ) -> None:
        await self.session.execute(
            update(WebhookInbox)
            .where(WebhookInbox.id == inbox_id)
            .values(status=status, errors=errors, processed_at=now, lease_until=None)
        )

    async def give_back(self, inbox_ids: list[int], at: datetime) -> None:
        """Unclaim rows that were never sent anywhere: not an attempt."""
        if not inbox_ids:
            return
        await self.session.execute(
            update(WebhookInbox)
            .where(WebhookInbox.id.in_(inbox_ids))
            .values(
                status=InboxStatus.PENDING,
                next_attempt_at=at,
                lease_until=None,
                attempts=WebhookInbox.attempts - 1,
            )
        )

    async def retry_later(self, inbox_id: int, error: dict[str, Any], at: datetime) -> None:
        row = await self.get(inbox_id)
        if row is None:
            return
        row.status = InboxStatus.PENDING
        row.next_attempt_at = at
        row.lease_until = None
        row.errors = [*(row.errors or []), error][-10:]

    async def waiting(self, task_id_b24: int) -> bool:
        """An inbox row for the task is still to be processed (it will read it)."""
        stmt = select(WebhookInbox.id).where(
            WebhookInbox.task_id_b24 == task_id_b24,
            WebhookInbox.status.in_((InboxStatus.PENDING, InboxStatus.PROCESSING)),
        )
        return (await self.session.execute(stmt.limit(1))).first() is not None

    async def last_read(self, task_id_b24: int) -> LastRead | None:
        row = await self.session.get(TaskRead, task_id_b24, populate_existing=True)
        return LastRead(row.changed_date, row.portal_read_at) if row is not None else None

    async def remember_read(
        self,
        task_id_b24: int,
        changed_date: str,
        now: datetime,
        portal_read_at: datetime | None = None,
    ) -> None:
        values = {"changed_date": changed_date, "read_at": now, "portal_read_at": portal_read_at}
        stmt = self._insert(TaskRead).values(task_id_b24=task_id_b24, **values)
        stmt = stmt.on_conflict_do_update(index_elements=["task_id_b24"], set_=values)
        await self.session.execute(stmt)

    async def purge_reads(self, before: datetime) -> int:
        result: Any = await self.session.execute(delete(TaskRead).where(TaskRead.read_at < before))
        return int(result.rowcount or 0)

    async def cursor_updated_at(self, name: str) -> datetime | None:
        row = await self.session.get(SyncCursor, name)
        return row.updated_at if row is not None else None
