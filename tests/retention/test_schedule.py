"""One run at a time across workers, once a day, from the worker's scheduler."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import update

from b24mw import registry
from b24mw.kit.db import Database
from b24mw.models.base import utcnow
from b24mw.outbox.schedulers import WorkerContext, registered_schedulers
from b24mw.retention import scheduler
from b24mw.retention.lease import JOB, RunLease
from b24mw.retention.repository import LEASES, RetentionRepository
from b24mw.retention.scheduler import daily_retention, run_when_due, running
from b24mw.retention.storage import StorageError
from b24mw.settings import Settings
from tests.retention.helpers import (
    old_day,
    retention_settings,
    run,
    seed_history,
    snapshot,
)


def _ctx(settings: Settings, db: Database, worker: str) -> WorkerContext:
    nothing: Any = None
    return WorkerContext(settings, db, http=nothing, b24=None, outbox=nothing, worker_id=worker)


async def test_the_worker_finds_the_daily_run() -> None:
    registry.install()
    assert "retention.daily" in {s.name for s in registered_schedulers()}


async def test_the_scheduler_starts_the_run_beside_the_other_schedulers(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed_history(db, {old_day(120): 300})
    settings = retention_settings(db, tmp_path)
    worker = f"w-{uuid.uuid4().hex[:8]}"
    ctx = _ctx(settings, db, worker)
    assert await daily_retention(ctx) == 0
    assert running(worker) is None  # a worker that just started waits a minute
    monkeypatch.setattr(scheduler, "WARM_UP_S", 0.0)

    assert await daily_retention(ctx) == 0  # returns at once; the run goes on
    task = running(worker)
    assert task is not None and not task.done()
    assert await daily_retention(ctx) == 0  # one run per worker at a time
    assert running(worker) is task
    assert await task == 450  # 300 task_events and 150 integration_log rows
    assert await snapshot(db) == {}


async def test_two_runs_at_once_one_runs_the_other_steps_aside(
    db: Database, tmp_path: Path
) -> None:
    await seed_history(db, {old_day(120): 300})
    settings = retention_settings(db, tmp_path)

    reports = await asyncio.gather(
        run(settings, db, holder="worker:a"), run(settings, db, holder="worker:b")
    )

    assert sorted(r is None for r in reports) == [False, True]
    [report] = [r for r in reports if r is not None]
    assert report.tables[0].rows == 300
    assert await snapshot(db) == {}


async def test_an_unexpired_lease_of_a_dead_run_blocks_until_it_expires(
    db: Database, tmp_path: Path
) -> None:
    await seed_history(db, {old_day(120): 10})
    settings = retention_settings(db, tmp_path)
    assert await RunLease(db, "worker:dead", 60).acquire()

    assert await run(settings, db, holder="worker:b") is None
    async with db.unit_of_work() as session:
        past = utcnow() - timedelta(seconds=1)
        await session.execute(update(LEASES).values(lease_until=past))
    assert await run(settings, db, holder="worker:b") is not None
    assert await snapshot(db) == {}


async def test_the_daily_run_runs_once_a_day_across_workers(db: Database, tmp_path: Path) -> None:
    await seed_history(db, {old_day(120): 20})
    settings = retention_settings(db, tmp_path)

    first = await run_when_due(_ctx(settings, db, "a"))
    await seed_history(db, {old_day(110): 5})
    second = await run_when_due(_ctx(settings, db, "b"))

    assert (first, second) == (30, 0)  # 20 task_events and 10 integration_log rows
    assert len(await snapshot(db)) == 5
    async with db.unit_of_work() as session:
        await session.execute(update(LEASES).values(last_started_at=utcnow() - timedelta(hours=25)))
    assert await run_when_due(_ctx(settings, db, "b")) == 5 + 3
    async with db.reader() as session:
        job = await RetentionRepository(session).job(JOB)
    assert job is not None and job.holder is None and job.last_success_at is not None
    success = REGISTRY.get_sample_value("b24mw_retention_last_success_timestamp_seconds")
    assert success is not None and success > 0
    rows = REGISTRY.get_sample_value("b24mw_archive_rows_total", {"table": "task_events"})
    assert rows is not None and rows >= 25


async def test_after_a_failure_the_daily_run_retries_within_hours(
    db: Database, tmp_path: Path
) -> None:
    await seed_history(db, {old_day(120): 20})
    broken = retention_settings(db, tmp_path, archive_url="s3://")  # no bucket
    try:
        await run_when_due(_ctx(broken, db, "a"))
    except Exception as exc:
        assert "s3://" in str(exc)
    else:
        raise AssertionError("a run without storage succeeded")
    async with db.reader() as session:
        job = await RetentionRepository(session).job(JOB)
    assert job is not None and job.last_failure_at is not None and job.holder is None
    assert job.last_error and "B24MW_ARCHIVE_URL" in job.last_error
    assert REGISTRY.get_sample_value("b24mw_retention_last_failure_timestamp_seconds")
    settings = retention_settings(db, tmp_path)

    assert await run_when_due(_ctx(settings, db, "b")) == 0  # an hour has not passed
    async with db.unit_of_work() as session:
        await session.execute(update(LEASES).values(last_started_at=utcnow() - timedelta(hours=2)))
    assert await run_when_due(_ctx(settings, db, "b")) == 30


async def test_a_storage_failure_is_recorded_on_the_lease_row(db: Database, tmp_path: Path) -> None:
    await seed_history(db, {old_day(120): 20})
    blocker = tmp_path / "archive"
    blocker.write_text("a file where the archive directory should be")
    settings = retention_settings(db, tmp_path)

    try:
        await run(settings, db)
    except StorageError:
        pass
    else:
        raise AssertionError("archived into a file")
    async with db.reader() as session:
        job = await RetentionRepository(session).job(JOB)
    assert job is not None and job.last_error and job.last_error.startswith("StorageError")
    assert len(await snapshot(db)) == 20
