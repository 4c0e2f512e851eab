"""The daily run inside ``b24mw worker``.

Every worker looks every five minutes; the lease row decides: a run starts
only when nobody holds the lease and the last run started a day ago (an hour
after a failed one).  So with ten workers on three machines there is one run
a day, and a worker that dies mid-run is replaced once its lease expires.

The worker runs its schedulers one after another, and a first run over
millions of rows takes minutes: the run is a task of its own, so the inbox
and reconciliation schedulers of the same worker keep their pace.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from b24mw.models.base import utcnow
from b24mw.outbox.schedulers import WorkerContext
from b24mw.retention.lease import JOB
from b24mw.retention.repository import RetentionRepository
from b24mw.retention.runner import RunOptions, run_retention

EVERY = timedelta(days=1)
AFTER_FAILURE = timedelta(hours=1)

# A worker starts looking only after this long: a crash-looping or short-lived
# worker (tests, one-off maintenance) never starts a run.
WARM_UP_S = 60.0

# The run started by each worker (by worker id), while it lasts.
_running: dict[str, asyncio.Task[int]] = {}
_first_seen: dict[str, float] = {}


async def daily_retention(ctx: WorkerContext) -> int:
    """Start ``run_when_due`` beside the other schedulers (not when one is running)."""
    first_seen = _first_seen.setdefault(ctx.worker_id, time.monotonic())
    if time.monotonic() - first_seen < WARM_UP_S:
        return 0
    task = _running.get(ctx.worker_id)
    if task is None or task.done():
        task = asyncio.create_task(run_when_due(ctx), name=f"retention:{ctx.worker_id}")
        # The runner logs and records a failure; this keeps asyncio from
        # reporting the exception a second time.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        _running[ctx.worker_id] = task
    return 0


def running(worker_id: str) -> asyncio.Task[int] | None:
    return _running.get(worker_id)


async def run_when_due(ctx: WorkerContext) -> int:
    """One run if it is due and nobody else runs it; the rows it archived."""
    now = utcnow()
    async with ctx.db.reader() as session:
        job = await RetentionRepository(session).job(JOB)
    failed_last = bool(
        job
        and job.last_failure_at
        and (job.last_success_at is None or job.last_failure_at > job.last_success_at)
    )
    wait = AFTER_FAILURE if failed_last else EVERY
    options = RunOptions(
        holder=f"worker:{ctx.worker_id}",
        older_than_days=ctx.settings.retention_days,
        started_before=now - wait,
    )
    report = await run_retention(ctx.settings, ctx.db, options)
    return report.rows if report is not None else 0
