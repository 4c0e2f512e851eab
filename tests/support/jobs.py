"""Small builders shared by the outbox tests."""

from __future__ import annotations

from typing import Any

from b24mw.kit.db import Database
from b24mw.kit.staging import flush
from b24mw.models.base import utcnow
from b24mw.models.ops import OutboxJob
from b24mw.outbox import Outbox
from b24mw.settings import Settings


async def comments(db: Database, settings: Settings, *pairs: tuple[int, str]) -> list[int]:
    """Enqueue ``(task id, text)`` comments in one transaction; their job ids."""
    outbox = Outbox(settings)
    async with db.unit_of_work() as session:
        made = [outbox.b24_comment(session, task_id, text) for task_id, text in pairs]
        await flush(session)
        return [job.id for job in made]


async def raw_job(db: Database, kind: str, payload: Any, **fields: Any) -> int:
    """A job exactly as given, bypassing the builders (poison payloads, replays)."""
    async with db.unit_of_work() as session:
        job = OutboxJob(
            kind=kind,
            payload=payload,
            status=fields.pop("status", "pending"),
            attempts=fields.pop("attempts", 0),
            next_attempt_at=fields.pop("next_attempt_at", utcnow()),
            error_history=fields.pop("error_history", []),
            **fields,
        )
        session.add(job)
        await flush(session)
        return job.id


async def job(db: Database, job_id: int) -> OutboxJob:
    async with db.reader() as session:
        found = await session.get(OutboxJob, job_id)
        assert found is not None
        return found
