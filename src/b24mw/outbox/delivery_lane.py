"""The delivery lane: ``event.publish`` and ``onec.push`` jobs, several at a time.

No shared quota applies here, so a round claims up to
``B24MW_OUTBOX_CONCURRENCY`` jobs (still first-of-key only) and delivers them
concurrently; one transaction then records every outcome and log row.
"""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.history.repository import log_exchange
from b24mw.kit.db import Database
from b24mw.models.base import utcnow
from b24mw.models.enums import JobKind, LogDirection
from b24mw.models.ops import OutboxJob
from b24mw.outbox import metrics, states
from b24mw.outbox.delivery import Deliverer, Delivery
from b24mw.outbox.lane import Lane
from b24mw.outbox.repository import OutboxRepository
from b24mw.settings import Settings


class DeliveryLane(Lane):
    kinds = (JobKind.EVENT_PUBLISH, JobKind.ONEC_PUSH)

    def __init__(
        self, settings: Settings, db: Database, worker_id: str, deliverer: Deliverer
    ) -> None:
        super().__init__(settings, db, worker_id)
        self.deliverer = deliverer
        self.concurrency = settings.outbox_concurrency

    async def round(self) -> int:
        if not await self.due():
            return 0
        jobs = await self._claim()
        if not jobs:
            return 0
        try:
            results = await asyncio.gather(*(self.deliverer.deliver(job) for job in jobs))
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.give_back(jobs, until=utcnow(), sent=True))
            raise
        deliveries = {job.id: result for job, result in zip(jobs, results, strict=True)}
        await self._complete(deliveries)
        return len(deliveries)

    async def _claim(self) -> list[OutboxJob]:
        claimed: list[OutboxJob] = []

        async def work(session: AsyncSession) -> None:
            claimed.clear()
            now = utcnow()
            for job in await OutboxRepository(session).claim(self.kinds, now, self.concurrency):
                if self.take(job, now):
                    claimed.append(job)

        await self.persist(work, deadline_s=5.0)
        return claimed

    async def _complete(self, deliveries: dict[int, Delivery]) -> None:
        async def work(session: AsyncSession) -> None:
            for job in await OutboxRepository(session).held(list(deliveries), self.worker_id):
                self._apply(session, job, deliveries[job.id])

        await self.persist(work)
        for delivery in deliveries.values():
            outcome = "ok" if delivery.ok else ("retryable" if delivery.retryable else "permanent")
            metrics.outbound(delivery.system, delivery.endpoint, outcome)

    def _apply(self, session: AsyncSession, job: OutboxJob, delivery: Delivery) -> None:
        log_exchange(
            session,
            direction=LogDirection.OUT,
            system=delivery.system,
            endpoint=delivery.endpoint[:255],
            status="ok" if delivery.ok else "error",
            http_code=delivery.http_status,
            resource_ref=_resource(job),
            request=delivery.request,
            response=delivery.response,
            error_code=delivery.code,
            retry_count=max(0, job.attempts - 1),
            request_id=job.request_id,
        )
        if delivery.ok:
            states.done(
                job, {"http_status": delivery.http_status} if delivery.http_status else None
            )
            return
        entry = states.failure_entry(
            job, code=delivery.code, error=delivery.error or "", http_status=delivery.http_status
        )
        if delivery.retryable:
            states.fail(job, entry, self.retry)
        else:
            if delivery.response is not None:
                entry["response"] = delivery.response
            states.dead(job, entry)


def _resource(job: OutboxJob) -> str:
    if job.ordering_key:
        return job.ordering_key
    event = job.payload.get("event") if isinstance(job.payload, dict) else None
    if isinstance(event, dict) and isinstance(event.get("subject"), str):
        return str(event["subject"])[:128]
    return f"outbox:{job.id}"
