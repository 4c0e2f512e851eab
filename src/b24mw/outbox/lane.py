"""What both worker lanes share: claiming, giving jobs back, and surviving the database.

A lane claims a set of jobs in one short transaction, does its network work
outside any transaction, and records every outcome in one more transaction.
If the database is gone at that moment (restart, failover) the outcome is kept
in memory and written as soon as it is back, while the lease still holds, so
a delivered job is not delivered twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.kit.db import Database
from b24mw.models.base import utcnow
from b24mw.models.enums import JobKind
from b24mw.models.ops import OutboxJob
from b24mw.outbox import states
from b24mw.outbox.repository import OutboxRepository
from b24mw.outbox.retry import RetryPolicy
from b24mw.settings import Settings

log = structlog.get_logger("b24mw.outbox")


def is_transient_db_error(exc: BaseException) -> bool:
    """Connection lost, server restarting, pool exhausted: worth trying again."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(
        exc,
        sa_exc.OperationalError
        | sa_exc.InterfaceError
        | sa_exc.TimeoutError
        | ConnectionError
        | OSError,
    )


def epoch_to_dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


class Lane:
    kinds: tuple[JobKind, ...] = ()

    def __init__(self, settings: Settings, db: Database, worker_id: str) -> None:
        self.settings = settings
        self.db = db
        self.worker_id = worker_id
        self.retry = RetryPolicy.from_settings(settings)
        self.lease_s = settings.outbox_lease_s
        # How long after a send that may have run its job waits before the
        # next attempt (a lookup, or a resend).  Lanes whose receivers
        # deduplicate (Idempotency-Key) need no wait.
        self.settle_s = 0.0

    async def round(self) -> int:
        """One claim-and-process round; the number of jobs whose outcome was recorded."""
        raise NotImplementedError

    async def due(self) -> bool:
        async with self.db.reader() as session:
            return await OutboxRepository(session).due_exists(self.kinds, utcnow())

    async def persist(
        self, work: Callable[[AsyncSession], Awaitable[None]], *, deadline_s: float | None = None
    ) -> None:
        """Run ``work`` in a unit of work, retrying while the database is unreachable."""
        deadline = time.monotonic() + (deadline_s if deadline_s is not None else self.lease_s)
        delay = 0.1
        while True:
            try:
                async with self.db.unit_of_work() as session:
                    await work(session)
                return
            except Exception as exc:
                if not is_transient_db_error(exc) or time.monotonic() + delay > deadline:
                    raise
                log.warning("outbox_db_unavailable", error=str(exc)[:200], retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    def take(self, job: OutboxJob, now: datetime) -> bool:
        """Lease a claimed job; False (and dead) when sends keep leaving no outcome.

        A job whose worker dies every time (a payload that crashes the process, a
        completion that always fails) would otherwise be re-sent forever.
        """
        states.claim(job, self.worker_id, now, self.lease_s)
        if job.attempts <= self.retry.max_attempts + 1:
            return True
        entry = states.failure_entry(
            job,
            code="NO_OUTCOME",
            error=f"claimed {job.attempts} times without a recorded outcome "
            "(the worker died or could not record it each time)",
        )
        states.dead(job, entry)
        return False

    async def give_back(self, jobs: Collection[OutboxJob], *, until: datetime, sent: bool) -> None:
        """Release held jobs (shutdown, no request slot): no attempt spent unless sent."""
        ids = [job.id for job in jobs]
        if sent:
            until = max(until, utcnow() + timedelta(seconds=self.settle_s))

        async def work(session: AsyncSession) -> None:
            for job in await OutboxRepository(session).held(ids, self.worker_id):
                if sent:
                    job.outcome_unknown = True
                    job.status = states.PENDING
                    job.next_attempt_at = until
                    job.lease_until = None
                    job.leased_by = None
                else:
                    states.defer(job, until)

        if ids:
            await self.persist(work, deadline_s=10.0)
