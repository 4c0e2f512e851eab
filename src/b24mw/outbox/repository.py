from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.models.ops import OutboxJob


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, job: OutboxJob) -> None:
        self.session.add(job)
