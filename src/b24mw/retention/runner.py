"""One retention run: take the lease, archive each table, purge, record the
outcome (lease row, metrics, log).  ``b24mw archive run`` and the worker's
daily scheduler both come here."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from b24mw.kit.db import Database
from b24mw.models.base import utcnow
from b24mw.retention import metrics
from b24mw.retention.cpu import CpuPool
from b24mw.retention.flows import ARCHIVED_TABLES, Archiver, TableReport, boundary_for
from b24mw.retention.lease import RunLease
from b24mw.retention.progress import RunProgress, Silent
from b24mw.retention.purge import purge_expired
from b24mw.retention.repository import RetentionRepository
from b24mw.retention.storage import ArchiveStorage, open_storage
from b24mw.settings import Settings
from b24mw.siem import SiemStream, open_stream

log = structlog.get_logger("b24mw.retention")


@dataclass
class RunReport:
    boundary: datetime
    tables: list[TableReport] = field(default_factory=list)
    purged: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(t.rows + t.resealed_rows for t in self.tables)

    def as_dict(self) -> dict[str, Any]:
        return {
            "archived_before": self.boundary.isoformat(),
            "tables": [t.as_dict() for t in self.tables],
            "purged": self.purged,
            "seconds": round(self.seconds, 3),
            "rows_per_s": round(self.rows / self.seconds) if self.seconds else None,
        }


@dataclass
class RunOptions:
    holder: str
    older_than_days: int
    tables: Sequence[str] = tuple(ARCHIVED_TABLES)
    purge: bool = True
    # The daily run only starts when the last one started before this.
    started_before: datetime | None = None


async def run_retention(
    settings: Settings,
    db: Database,
    options: RunOptions,
    *,
    storage: ArchiveStorage | None = None,
    audit: SiemStream | None = None,
    progress: RunProgress | None = None,
) -> RunReport | None:
    """The report, or None when another run holds the lease (or it is not due)."""
    lease = RunLease(db, options.holder, settings.archive_lease_s)
    if not await lease.acquire(started_before=options.started_before):
        return None
    own_audit = audit is None
    audit = audit or open_stream(settings.siem_sink)
    progress = progress or Silent()
    started = time.perf_counter()
    now = utcnow()
    report = RunReport(boundary_for(now, options.older_than_days))
    cpu = CpuPool(settings.archive_nice)
    try:
        async with db.reader() as session:
            revision = await RetentionRepository(session).schema_revision()
        archiver = Archiver(
            db=db,
            storage=storage or open_storage(settings),
            lease=lease,
            audit=audit,
            batch_rows=settings.archive_batch_rows,
            revision=revision,
            progress=progress,
            parallel_days=settings.archive_parallel_days,
            cpu=cpu,
        )
        for name in options.tables:
            table_report = await archiver.archive(name, report.boundary)
            report.tables.append(table_report)
            log.info("retention_table_archived", **table_report.as_dict())
        if options.purge:
            report.purged = await purge_expired(db, settings, now, audit, options.holder)
    except BaseException as exc:
        report.seconds = time.perf_counter() - started
        metrics.LAST_FAILURE.set(time.time())
        log.error("retention_run_failed", error=f"{type(exc).__name__}: {exc}")
        await _release(lease, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        cpu.close()
        progress.stop()
        if own_audit:
            audit.close()
    report.seconds = time.perf_counter() - started
    await lease.release(None)
    metrics.RUN_DURATION.set(report.seconds)
    metrics.LAST_SUCCESS.set(time.time())
    log.info("retention_run_done", rows=report.rows, seconds=round(report.seconds, 3))
    return report


async def _release(lease: RunLease, error: str) -> None:
    # The database may be what failed: the lease then simply expires.
    try:
        await lease.release(error)
    except Exception as exc:
        log.warning("retention_lease_release_failed", error=type(exc).__name__)
