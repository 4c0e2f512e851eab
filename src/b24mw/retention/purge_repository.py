"""SQL of the purges: expired operational rows, deleted in bounded batches."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.models.base import table_of
from b24mw.models.enums import InboxStatus, OutboxStatus
from b24mw.models.ops import IdempotencyKey, OutboxJob, WebhookInbox
from b24mw.retention.repository import RetentionRepository

KEYS = table_of(IdempotencyKey)
INBOX = table_of(WebhookInbox)
OUTBOX = table_of(OutboxJob)


def inbox_processed(before: datetime) -> ColumnElement[bool]:
    done = (InboxStatus.DONE, InboxStatus.REJECTED)
    return INBOX.c.status.in_(done) & (INBOX.c.processed_at < before)


def outbox_finished(before: datetime) -> ColumnElement[bool]:
    return (
        (OUTBOX.c.status == OutboxStatus.DONE)
        & OUTBOX.c.discarded_at.is_(None)
        & (OUTBOX.c.finished_at < before)
    )


def dead_letters_discarded(before: datetime) -> ColumnElement[bool]:
    return OUTBOX.c.discarded_at.is_not(None) & (OUTBOX.c.discarded_at < before)


class PurgeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def expired_keys(self, now: datetime, limit: int) -> int:
        """Delete up to ``limit`` idempotency keys past ``expires_at``."""
        expired = KEYS.c.expires_at < now
        pk = (KEYS.c.key, KEYS.c.endpoint, KEYS.c.actor_id)
        batch = select(*pk).where(expired).order_by(KEYS.c.expires_at).limit(limit)
        stmt = delete(KEYS).where(expired, tuple_(*pk).in_(batch))
        result: Any = await self.session.execute(stmt)
        return int(result.rowcount)

    async def ids_after(
        self, table: Table, cond: ColumnElement[bool], after_id: int, limit: int
    ) -> Sequence[int]:
        """The next ``limit`` ids matching ``cond`` in id order: one pass over the
        primary key for the whole purge, however many batches it takes."""
        stmt = select(table.c.id).where(cond, table.c.id > after_id).order_by(table.c.id)
        return (await self.session.execute(stmt.limit(limit))).scalars().all()

    async def delete_ids(self, table: Table, cond: ColumnElement[bool], ids: Sequence[int]) -> int:
        """Delete those ``ids`` that still match ``cond`` (a job replayed meanwhile stays)."""
        in_ids = RetentionRepository(self.session).ids_in(table.c.id, ids)
        result: Any = await self.session.execute(delete(table).where(cond, in_ids))
        return int(result.rowcount)
