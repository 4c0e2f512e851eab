"""The archive run: task history older than the retention window, one UTC day
and one bounded part at a time.

For each part: read a batch of rows by id (a short read), encode and compress
it off the event loop, upload the part and its manifest, **read the part back
and check** count, id range and SHA-256, and only then, in one short
transaction that also checks the run still holds its lease, delete exactly
those ids and insert the ``archive_manifest`` row.  Wherever the run stops,
every row is in the table or in a verified part, never both as far as the
database knows, and never neither:

- stopped before the delete committed: the rows are still in the table; the
  next run computes the same part number (manifest rows are committed with
  the delete) and overwrites the orphaned object;
- stopped after: the manifest row and the object say where the rows are.

Rows a ``restore`` brought back are already in a part: the run skips their id
ranges and, when they still encode to exactly that part, deletes them again
without writing anything ("re-seal").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any

import structlog
from sqlalchemy import Row, Table

from b24mw.kit.db import Database
from b24mw.models.base import table_of, utcnow
from b24mw.models.enums import ManifestStatus
from b24mw.models.history import HistoryEntry, IntegrationLog
from b24mw.models.ops import ArchiveManifest
from b24mw.models.support import ChatMessage
from b24mw.retention import metrics
from b24mw.retention.codec import (
    Part,
    Schema,
    build_part,
    check_part,
    compress_lines,
    dump_manifest,
    manifest_doc,
    part_key,
)
from b24mw.retention.cpu import CpuPool
from b24mw.retention.lease import RunLease
from b24mw.retention.progress import RunProgress, Silent
from b24mw.retention.repository import RetentionRepository
from b24mw.retention.storage import ArchiveStorage
from b24mw.siem import SiemStream

log = structlog.get_logger("b24mw.retention")

ARCHIVED_TABLES: dict[str, Table] = {
    "task_events": table_of(HistoryEntry),
    "integration_log": table_of(IntegrationLog),
    # Customer chat messages (issue 17): the same window; their sessions and
    # links stay, so a restored message finds its session again.
    "chat_messages": table_of(ChatMessage),
}
DAY = timedelta(days=1)


class ArchiveConflict(Exception):
    """The rows changed between reading and deleting them: nothing was deleted."""


def day_start(day: date) -> datetime:
    return datetime.combine(day, dtime.min, tzinfo=UTC)


def boundary_for(now: datetime, older_than_days: int) -> datetime:
    """Rows strictly before this are due: whole UTC days, all older than the window."""
    return day_start((now - timedelta(days=older_than_days)).date())


def data_key(stem: str) -> str:
    return f"{stem}.jsonl.gz"


def manifest_key(stem: str) -> str:
    return f"{stem}.manifest.json"


@dataclass
class TableReport:
    table: str
    rows: int = 0
    parts: int = 0
    bytes: int = 0
    days: list[str] = field(default_factory=list)
    resealed_rows: int = 0
    kept_restored_rows: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "rows": self.rows,
            "parts": self.parts,
            "bytes": self.bytes,
            "days": len(self.days),
            "first_day": self.days[0] if self.days else None,
            "last_day": self.days[-1] if self.days else None,
            "resealed_rows": self.resealed_rows,
            "kept_restored_rows": self.kept_restored_rows,
        }


@dataclass
class Archiver:
    """One run's collaborators; ``archive`` does one table."""

    db: Database
    storage: ArchiveStorage
    lease: RunLease
    audit: SiemStream | None
    batch_rows: int
    revision: str
    progress: RunProgress = field(default_factory=Silent)
    parallel_days: int = 1
    cpu: CpuPool = field(default_factory=lambda: CpuPool(nice=0))

    async def archive(self, name: str, boundary: datetime) -> TableReport:
        table = ARCHIVED_TABLES[name]
        schema = Schema.of(table)
        report = TableReport(name)
        async with self.db.reader() as session:
            total = await RetentionRepository(session).count_between(
                table, datetime.min.replace(tzinfo=UTC), boundary
            )
        self.progress.start(name, total)
        days: list[date] = []
        since = datetime.min.replace(tzinfo=UTC)
        async with self.db.reader() as session:
            repo = RetentionRepository(session)
            while (oldest := await repo.oldest_ts(table, before=boundary, since=since)) is not None:
                days.append(oldest.astimezone(UTC).date())
                since = day_start(days[-1]) + DAY
        # Days are independent (each has its own parts), so several may go at
        # once (B24MW_ARCHIVE_PARALLEL_DAYS).  A failure in one day cancels
        # the others.
        gate = asyncio.Semaphore(1 if self.db.is_sqlite else self.parallel_days)

        async def one_day(day: date) -> None:
            async with gate:
                await self._day(table, schema, day, report)

        try:
            async with asyncio.TaskGroup() as group:
                for day in days:
                    group.create_task(one_day(day))
        except BaseExceptionGroup as failed:
            # The first failure is the run's error, as with one day at a time.
            raise failed.exceptions[0] from None
        report.days = [d.isoformat() for d in days]
        return report

    async def _day(self, table: Table, schema: Schema, day: date, report: TableReport) -> None:
        start, end = day_start(day), day_start(day) + DAY
        async with self.db.reader() as session:
            repo = RetentionRepository(session)
            restored = await repo.manifests(
                table=table.name, first_day=day, last_day=day, status=ManifestStatus.RESTORED
            )
            skip = await repo.restored_ranges(table.name, day)
        for manifest in restored:
            await self._reseal(table, schema, manifest, report)
        async with self.db.reader() as session:
            repo = RetentionRepository(session)
            part_no = await repo.next_part(table.name, day)
            first_id = await repo.first_id(table, start, end)
        if first_id is None:
            return

        def fetch(after_id: int) -> asyncio.Task[tuple[list[int], Part] | None]:
            return asyncio.create_task(
                self._fetch(
                    table, schema, start, end, after_id=after_id, limit=self.batch_rows, skip=skip
                )
            )

        # The next batch is read and compressed while this one is uploaded,
        # read back and deleted: the database and this process work side by side.
        pending = fetch(first_id - 1)
        try:
            while (fetched := await pending) is not None:
                ids, part = fetched
                pending = fetch(ids[-1])
                stem = part_key("", table.name, day, part_no)
                await self._store_and_verify(schema, day, part_no, stem, part)
                await self._commit(table, day, part_no, stem, part, ids)
                report.rows += part.row_count
                report.parts += 1
                report.bytes += part.size_bytes
                self.progress.advance(part.row_count)
                part_no += 1
        finally:
            # A batch read ahead of a failed part is dropped, its rows untouched.
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending

    async def _fetch(
        self, table: Table, schema: Schema, start: datetime, end: datetime, **where: Any
    ) -> tuple[list[int], Part] | None:
        """The next rows of a day as a compressed part (None when there are none).
        Encoding and compression run in a thread: the worker's loop keeps going."""
        kinds = [kind for _, kind, _ in schema.columns]
        async with self.db.reader() as session:
            repo = RetentionRepository(session)
            if self.db.is_sqlite:
                rows = await repo.rows(table, start, end, **where)
            else:
                rows = await repo.rows_as_json(table, kinds, start, end, **where)
        if not rows:
            return None
        ids = [row.id for row in rows]
        if self.db.is_sqlite:
            return ids, await self.cpu.run(_encode, schema, rows, ids)
        raw = ("\n".join([row.line for row in rows]) + "\n").encode()
        return ids, await self.cpu.run(compress_lines, raw, ids)

    async def _store_and_verify(
        self, schema: Schema, day: date, part_no: int, stem: str, part: Part
    ) -> None:
        key = data_key(stem)
        doc = manifest_doc(schema, day, part_no, key, part, self.revision, utcnow())
        await self.storage.put(key, part.data)
        await self.storage.put(manifest_key(stem), dump_manifest(doc))
        back = await self.storage.get(key)
        await self.cpu.run(
            check_part,
            back,
            sha256=part.sha256,
            row_count=part.row_count,
            first_id=part.first_id,
            last_id=part.last_id,
        )

    async def _commit(
        self, table: Table, day: date, part_no: int, stem: str, part: Part, ids: Sequence[int]
    ) -> None:
        now = utcnow()
        async with self.db.unit_of_work() as session:
            await self.lease.fence(session)
            repo = RetentionRepository(session)
            deleted = await repo.delete_ids(table, ids)
            if deleted != len(ids):
                raise ArchiveConflict(
                    f"{table.name} {day}: {deleted} of {len(ids)} rows left to delete"
                )
            await repo.add_manifest(
                {
                    "table_name": table.name,
                    "day": day,
                    "part": part_no,
                    "object_key": data_key(stem),
                    "row_count": part.row_count,
                    "first_id": part.first_id,
                    "last_id": part.last_id,
                    "size_bytes": part.size_bytes,
                    "sha256": part.sha256,
                    "schema_revision": self.revision,
                    "status": ManifestStatus.VERIFIED,
                    "created_at": now,
                    "verified_at": now,
                }
            )
        self._audit_delete(table.name, day, part_no, data_key(stem), part, "archived")
        metrics.ARCHIVED_ROWS.labels(table.name).inc(part.row_count)
        metrics.ARCHIVED_BYTES.labels(table.name).inc(part.size_bytes)
        metrics.ARCHIVED_PARTS.labels(table.name).inc()

    async def _reseal(
        self, table: Table, schema: Schema, manifest: ArchiveManifest, report: TableReport
    ) -> None:
        """Delete restored rows again when they are byte-for-byte their part."""
        start = day_start(manifest.day)
        fetched = await self._fetch(
            table, schema, start, start + DAY, ids_between=(manifest.first_id, manifest.last_id)
        )
        ids, part = fetched if fetched is not None else ([], None)
        if part is not None and part.sha256 != manifest.sha256:
            # Changed or partly deleted since the restore: the archive no longer
            # says what the table holds, so the rows stay (and are not re-archived).
            log.warning(
                "retention_restored_rows_differ",
                table=table.name,
                day=manifest.day.isoformat(),
                part=manifest.part,
                rows=len(ids),
            )
            report.kept_restored_rows += len(ids)
            return
        back = await self.storage.get(manifest.object_key)
        await self.cpu.run(
            check_part,
            back,
            sha256=manifest.sha256,
            row_count=manifest.row_count,
            first_id=manifest.first_id,
            last_id=manifest.last_id,
        )
        async with self.db.unit_of_work() as session:
            await self.lease.fence(session)
            repo = RetentionRepository(session)
            if ids and await repo.delete_ids(table, ids) != len(ids):
                raise ArchiveConflict(f"{table.name} {manifest.day}: restored rows changed")
            await repo.set_manifest_status(
                manifest.id,
                ManifestStatus.VERIFIED,
                now=utcnow(),
                expect=ManifestStatus.RESTORED,
            )
        if part is not None:
            self._audit_delete(
                table.name, manifest.day, manifest.part, manifest.object_key, part, "resealed"
            )
            metrics.ARCHIVED_ROWS.labels(table.name).inc(part.row_count)
            report.resealed_rows += part.row_count
            self.progress.advance(part.row_count)

    def _audit_delete(
        self, table: str, day: date, part_no: int, key: str, part: Part, reason: str
    ) -> None:
        fields: dict[str, object] = {
            "table": table,
            "rows": part.row_count,
            "first_id": part.first_id,
            "last_id": part.last_id,
            "day": day.isoformat(),
            "part": part_no,
            "object": f"{self.storage.url}/{key}",
            "sha256": part.sha256,
            "reason": reason,
            "actor": self.lease.holder,
        }
        if self.audit is not None:
            self.audit.emit_record("retention_delete", fields)


def _encode(schema: Schema, rows: Sequence[Row[Any]], ids: list[int]) -> Part:
    encode = schema.encoder()
    return build_part((encode(row) for row in rows), ids)


async def dry_run(db: Database, tables: Sequence[str], boundary: datetime) -> list[dict[str, Any]]:
    """What a run would archive, per table and day, without touching anything."""
    out: list[dict[str, Any]] = []
    for name in tables:
        table = ARCHIVED_TABLES[name]
        since = datetime.min.replace(tzinfo=UTC)
        async with db.reader() as session:
            repo = RetentionRepository(session)
            while (oldest := await repo.oldest_ts(table, before=boundary, since=since)) is not None:
                start = day_start(oldest.astimezone(UTC).date())
                rows = await repo.count_between(table, start, start + DAY)
                out.append({"table": name, "day": start.date().isoformat(), "rows": rows})
                since = start + DAY
    return out
