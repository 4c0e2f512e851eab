"""The daily run inside ``b24mw worker``.

Every worker looks every few minutes; the lease row decides: a run starts
only when nobody holds the lease and the last run started a day ago (an hour
after a failed one).  So with ten workers on three machines there is one run
a day, and a worker that dies mid-run is replaced once its lease expires.
"""

from __future__ import annotations

from datetime import timedelta

from b24mw.models.base import utcnow
from b24mw.outbox.schedulers import WorkerContext, scheduler
from b24mw.retention.lease import JOB
from b24mw.retention.repository import RetentionRepository
from b24mw.retention.runner import RunOptions, run_retention

EVERY = timedelta(days=1)
AFTER_FAILURE = timedelta(hours=1)


@scheduler("retention.daily", interval_s=300.0, drain=False)
async def daily_retention(ctx: WorkerContext) -> int:
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
