"""Dead-letter queue operations shared by the admin API and ``b24mw dlq``.

A dead job keeps its payload, its result (when the call succeeded but a hook
failed) and every attempt's error.  Replay puts it back as new attempts with
its history; discard closes it without delivery, on the record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.kit.db import Executor
from b24mw.kit.errors import Conflict, FieldError, NotFound
from b24mw.kit.pagination import CursorKey, Page, PageRequest
from b24mw.models.base import utcnow
from b24mw.models.ops import OutboxJob
from b24mw.outbox import states
from b24mw.outbox.repository import OutboxRepository

# The queue's sort key, most recently failed first: (finished_at, id).
DLQ_CURSOR = CursorKey("dlq", (datetime, int))


async def list_dead(
    session: Executor, request: PageRequest, *, kind: str | None
) -> Page[dict[str, Any]]:
    return await OutboxRepository(session).dead(request, kind=kind)


async def get(session: AsyncSession, job_id: int, *, lock: bool = False) -> OutboxJob:
    job = await OutboxRepository(session).get(job_id, lock=lock)
    if job is None:
        raise NotFound(f"Outbox job {job_id} not found.")
    return job


async def _dead(session: AsyncSession, job_id: int) -> OutboxJob:
    job = await get(session, job_id, lock=True)
    if job.status != states.DEAD:
        raise Conflict(
            f"Outbox job {job_id} is {job.status}, not in the dead-letter queue.",
            errors=[FieldError("job_id", f"job is {job.status}; only dead jobs qualify")],
            code="conflict.transition",
        )
    return job


async def replay(session: AsyncSession, job_id: int, actor: str) -> OutboxJob:
    job = await _dead(session, job_id)
    states.replay(job, actor)
    await session.flush()
    return job


async def discard(session: AsyncSession, job_id: int, actor: str) -> OutboxJob:
    job = await _dead(session, job_id)
    states.discard(job, actor)
    await session.flush()
    return job


async def replay_all(session: AsyncSession, actor: str, *, kind: str | None = None) -> list[int]:
    repo = OutboxRepository(session)
    ids = await repo.dead_ids(kind=kind)
    for job_id in ids:
        job = await repo.get(job_id, lock=True)
        if job is not None and job.status == states.DEAD:
            states.replay(job, actor)
    await session.flush()
    return ids


async def outbox_state(session: AsyncSession) -> dict[str, Any]:
    repo = OutboxRepository(session)
    now = utcnow()
    counts = await repo.counts()
    oldest = await repo.oldest_due(now)
    return {
        "counts": {status: counts.get(status, 0) for status in states_order()},
        "due_now": await repo.due_count(now),
        "oldest_due": None
        if oldest is None
        else {
            "id": oldest.id,
            "kind": oldest.kind,
            "ordering_key": oldest.ordering_key,
            "next_attempt_at": oldest.next_attempt_at,
            "age_s": round((now - oldest.next_attempt_at).total_seconds(), 3),
            "attempts": oldest.attempts,
        },
    }


def states_order() -> tuple[str, ...]:
    return (states.PENDING, states.IN_FLIGHT, states.DONE, states.DEAD)
