"""SQL for the outbox: claiming with leases, finishing, and the operator's views."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import aliased

from b24mw.kit.listing import Keyset
from b24mw.kit.pagination import Page, PageRequest
from b24mw.kit.repository import Repository
from b24mw.kit.staging import StagedRow, stage
from b24mw.models.base import table_of
from b24mw.models.enums import JobKind, OutboxStatus
from b24mw.models.ops import OutboxJob

PENDING = OutboxStatus.PENDING
IN_FLIGHT = OutboxStatus.IN_FLIGHT
DEAD = OutboxStatus.DEAD
JOBS = table_of(OutboxJob)
# Parameter names Bitrix24 uses for the task id: task.commentitem.* / tasks.task.*
TASK_PARAMS = ("TASKID", "taskId")
# The dead-letter queue, most recently failed first (a dead job always has
# finished_at: outbox.states.dead), from the partial indexes of dead jobs.
DEAD_KEYSET = Keyset((JOBS.c.finished_at, JOBS.c.id), descending=True)
DEAD_SUMMARY = (
    "id", "kind", "status", "ordering_key", "attempts", "last_error", "request_id",
    "created_at", "finished_at",
)  # fmt: skip


class OpenWork(NamedTuple):
    kind: str
    on_result: str | None
    on_dead: str | None
    jobs: int


def dead_branches(kind: str | None) -> list[Select[Any]]:
    """The dead-letter queue (of one kind) on its partial indexes."""
    stmt = select(*(JOBS.c[name] for name in DEAD_SUMMARY)).where(JOBS.c.status == DEAD)
    if kind is not None:
        stmt = stmt.where(JOBS.c.kind == kind)
    return [stmt]


def _claimable(kinds: Collection[str], now: datetime) -> ColumnElement[bool]:
    """Due now (or leased by a worker whose lease ran out), and first in its key's line.

    A job waits while an earlier job with the same ordering key is pending or in
    flight: job N+1 of a Bitrix24 task never runs before job N is done or dead.
    """
    prior = aliased(OutboxJob)
    earlier_open = (
        select(prior.id)
        .where(
            prior.ordering_key == OutboxJob.ordering_key,
            prior.id < OutboxJob.id,
            prior.status.in_((PENDING, IN_FLIGHT)),
        )
        .exists()
    )
    due = or_(
        and_(OutboxJob.status == PENDING, OutboxJob.next_attempt_at <= now),
        and_(OutboxJob.status == IN_FLIGHT, OutboxJob.lease_until < now),
    )
    return and_(
        OutboxJob.kind.in_(tuple(kinds)),
        due,
        or_(OutboxJob.ordering_key.is_(None), ~earlier_open),
    )


class OutboxRepository(Repository):
    __slots__ = ()

    def add(self, values: dict[str, Any]) -> StagedRow:
        """Queue a new job; written with the unit of work (``kit.db.stage``)."""
        return stage(self.unit, JOBS, values)

    async def get(self, job_id: int, *, lock: bool = False) -> OutboxJob | None:
        stmt = select(OutboxJob).where(OutboxJob.id == job_id)
        if lock:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def due_exists(self, kinds: Collection[str], now: datetime) -> bool:
        stmt = select(OutboxJob.id).where(_claimable(kinds, now)).limit(1)
        return (await self.session.execute(stmt)).first() is not None

    async def claim(self, kinds: Collection[str], now: datetime, limit: int) -> list[OutboxJob]:
        """Lock up to ``limit`` claimable jobs, oldest first.

        PostgreSQL: ``FOR UPDATE SKIP LOCKED`` lets workers on several machines
        claim side by side without waiting or taking the same job.  SQLite
        renders no locking clause: its ``BEGIN IMMEDIATE`` serializes claims.
        """
        stmt = (
            select(OutboxJob)
            .where(_claimable(kinds, now))
            .order_by(OutboxJob.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=OutboxJob)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def held(self, ids: Collection[int], worker_id: str) -> list[OutboxJob]:
        """The jobs of ``ids`` this worker still holds (a lost lease drops out)."""
        if not ids:
            return []
        stmt = (
            select(OutboxJob)
            .where(
                OutboxJob.id.in_(tuple(ids)),
                OutboxJob.status == IN_FLIGHT,
                OutboxJob.leased_by == worker_id,
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def counts(self) -> dict[str, int]:
        stmt = select(OutboxJob.status, func.count()).group_by(OutboxJob.status)
        return {status: int(n) for status, n in (await self.session.execute(stmt)).all()}

    async def open_work(self) -> list[OpenWork]:
        """What the unfinished jobs (pending or in flight) need of a worker: each
        kind with the hooks its jobs name, and how many jobs ask for it."""
        named = (
            select(
                OutboxJob.kind.label("kind"),
                OutboxJob.payload["on_result"].as_string().label("on_result"),
                OutboxJob.payload["on_dead"].as_string().label("on_dead"),
            )
            .where(OutboxJob.status.in_((PENDING, IN_FLIGHT)))
            .subquery()
        )
        cols = (named.c.kind, named.c.on_result, named.c.on_dead)
        stmt = select(*cols, func.count()).group_by(*cols)
        return [OpenWork(*row) for row in (await self.session.execute(stmt)).all()]

    async def fill_task_id(self, ordering_key: str, task_id_b24: int) -> int:
        """Put the task id into the unsent Bitrix24 jobs of ``ordering_key`` that
        were written before the task existed; answer how many."""
        stmt = (
            select(OutboxJob)
            .where(
                OutboxJob.ordering_key == ordering_key,
                OutboxJob.kind == JobKind.B24_CALL,
                # Dead too: if they were tried before the task existed (the
                # add itself was dead-lettered), a replay now carries the id.
                OutboxJob.status.in_((PENDING, DEAD)),
            )
            .order_by(OutboxJob.id)
        )
        filled = 0
        for job in (await self.session.execute(stmt)).scalars():
            params = dict(job.payload.get("params") or {})
            missing = [p for p in TASK_PARAMS if p in params and params[p] is None]
            if not missing:
                continue
            for name in missing:
                params[name] = task_id_b24
            # A new dict, so the JSON column is seen as changed.
            job.payload = {**job.payload, "params": params}
            filled += 1
        await self.unit.flush()
        return filled

    async def oldest_due(self, now: datetime) -> OutboxJob | None:
        stmt = (
            select(OutboxJob)
            .where(OutboxJob.status == PENDING, OutboxJob.next_attempt_at <= now)
            .order_by(OutboxJob.next_attempt_at, OutboxJob.id)
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def due_count(self, now: datetime) -> int:
        stmt = select(func.count()).where(
            OutboxJob.status == PENDING, OutboxJob.next_attempt_at <= now
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def dead(self, request: PageRequest, *, kind: str | None) -> Page[dict[str, Any]]:
        return await self.page(request, DEAD_KEYSET, dead_branches(kind))

    async def dead_ids(self, *, kind: str | None) -> list[int]:
        stmt = select(OutboxJob.id).where(OutboxJob.status == DEAD).order_by(OutboxJob.id)
        if kind is not None:
            stmt = stmt.where(OutboxJob.kind == kind)
        return [int(i) for i in (await self.session.execute(stmt)).scalars()]
