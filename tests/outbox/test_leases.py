"""Leases: a dead worker's jobs come back; live workers never share a job."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import httpx
from sqlalchemy import update

from b24mw.kit.db import Database
from b24mw.models.base import utcnow
from b24mw.models.ops import OutboxJob
from b24mw.outbox.b24_lane import B24Lane
from b24mw.outbox.worker import Worker
from b24mw.settings import Settings
from tests.support.jobs import comments, job
from tests.support.outbound import EmulatorHandle, drain, jobs, outbound_settings_for


async def test_expired_lease_is_reclaimed_and_checked_before_resending(
    db: Database, outbound_http: httpx.AsyncClient, emulator: EmulatorHandle, worker: Worker
) -> None:
    task = await emulator.create_task()
    short = outbound_settings_for(db.url, outbox_lease_s=0.2)
    (job_id,) = await comments(db, short, (task["id"], "orphaned"))
    crashed = Worker(short, db, http=outbound_http, worker_id="crashed")
    lane = next(lane for lane in crashed.lanes if isinstance(lane, B24Lane))
    (held,) = await lane._claim()  # claimed, then the process "dies"
    assert held.id == job_id and held.leased_by == "crashed"

    assert await worker.drain() == 0  # the lease still holds
    # The dead worker's lease runs out: move its end instead of waiting for it.
    async with db.unit_of_work() as session:
        await session.execute(
            update(OutboxJob)
            .where(OutboxJob.id == job_id)
            .values(lease_until=utcnow() - timedelta(seconds=1))
        )
    await drain(worker, settle=True)
    done = await job(db, job_id)
    assert (done.status, done.leased_by) == ("done", "test-worker")
    methods = [c["method"] for c in await emulator.calls()]
    # No task chat (the classic card), not among the comments: sent once.
    assert methods == ["tasks.task.get", "task.commentitem.getlist", "task.commentitem.add"]
    assert len(await emulator.comments(task["id"])) == 1


async def test_concurrent_workers_never_deliver_a_job_twice(
    db: Database,
    outbound_settings: Settings,
    outbound_http: httpx.AsyncClient,
    emulator: EmulatorHandle,
) -> None:
    tasks = [await emulator.create_task(title=f"T{i}") for i in range(30)]
    # Three comments per task: per-key order must hold across workers too.
    pairs = [(t["id"], f"{t['id']}-{n}") for n in range(3) for t in tasks]
    await comments(db, outbound_settings, *pairs)
    small_batches = outbound_settings_for(db.url, b24_batch_max=5)
    workers = [Worker(small_batches, db, http=outbound_http, worker_id=f"w{i}") for i in range(3)]
    await asyncio.gather(*(drain(w, settle=True, timeout=30) for w in workers))

    rows = await jobs(db)
    assert {row.status for row in rows} == {"done"}
    assert len({row.leased_by for row in rows}) > 1  # the work was really shared
    sent = Counter(
        command["args"]["FIELDS"]["POST_MESSAGE"].split("\n")[0]
        for call in await emulator.calls("batch")
        for command in call["commands"]
    )
    assert sent == Counter(text for _, text in pairs)  # every job exactly once
    for task in tasks:
        texts = [c["text"].split("\n")[0] for c in await emulator.comments(task["id"])]
        assert texts == [f"{task['id']}-{n}" for n in range(3)]
