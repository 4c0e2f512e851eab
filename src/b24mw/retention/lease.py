"""One retention run at a time across every worker and machine.

A row in ``job_leases`` (not a process flag, not a PostgreSQL advisory lock,
so SQLite deployments get the same guarantee): a run takes it with a
conditional UPDATE, renews it as it goes, and every delete transaction checks
it is still the holder (``fence``).  A run that stalled past its lease and was
overtaken therefore cannot delete anything: its transaction rolls back.
A process killed mid-run leaves the lease to expire (``B24MW_ARCHIVE_LEASE_S``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.kit.db import Database
from b24mw.models.base import utcnow
from b24mw.retention.repository import RetentionRepository

JOB = "retention"


class LeaseLost(Exception):
    """Another run took the lease over: this one must stop without deleting."""


class RunLease:
    def __init__(self, db: Database, holder: str, ttl_s: float, name: str = JOB) -> None:
        self.db = db
        self.holder = holder
        self.ttl = timedelta(seconds=ttl_s)
        self.name = name

    async def acquire(self, *, started_before: datetime | None = None) -> bool:
        now = utcnow()
        async with self.db.unit_of_work() as session:
            repo = RetentionRepository(session)
            await repo.ensure_lease(self.name)
            return await repo.acquire(
                self.name,
                self.holder,
                now=now,
                until=now + self.ttl,
                started_before=started_before,
            )

    async def fence(self, session: AsyncSession) -> None:
        """Renew inside ``session``'s transaction, or raise so it rolls back."""
        now = utcnow()
        repo = RetentionRepository(session)
        if not await repo.renew(self.name, self.holder, now=now, until=now + self.ttl):
            raise LeaseLost(f"lease {self.name!r} is no longer held by {self.holder}")

    async def renew(self) -> None:
        async with self.db.unit_of_work() as session:
            await self.fence(session)

    async def release(self, error: str | None) -> None:
        async with self.db.unit_of_work() as session:
            await RetentionRepository(session).release(
                self.name, self.holder, now=utcnow(), error=error
            )
