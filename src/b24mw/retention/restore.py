"""``archive restore`` and ``archive verify``: read parts back from storage.

Restore writes a part's rows back in short transactions, skipping ids the
table already has, so running it twice (or after a partial restore) adds
nothing twice.  It holds the run's lease: a run cannot delete a part's rows
while they are coming back.  The restored parts are marked ``restored``; the
next run deletes their rows again once they are unchanged (``flows``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from b24mw.kit.db import Database
from b24mw.models.base import utcnow
from b24mw.models.enums import ManifestStatus
from b24mw.models.ops import ArchiveManifest
from b24mw.retention import metrics
from b24mw.retention.codec import PartMismatch, Schema, check_part
from b24mw.retention.flows import ARCHIVED_TABLES, manifest_key
from b24mw.retention.lease import RunLease
from b24mw.retention.progress import RunProgress, Silent
from b24mw.retention.repository import RetentionRepository
from b24mw.retention.storage import ArchiveStorage, StorageError

CHUNK = 2_000


class RetentionBusy(Exception):
    """Another run or restore holds the lease."""


@dataclass
class RestoreReport:
    table: str
    parts: int = 0
    rows_in_parts: int = 0
    restored: int = 0
    skipped: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "parts": self.parts,
            "rows_in_parts": self.rows_in_parts,
            "restored": self.restored,
            "skipped_existing": self.skipped,
            "failed": self.failed,
        }


def _stem(key: str) -> str:
    return key.removesuffix(".jsonl.gz")


async def _read_part(storage: ArchiveStorage, manifest: ArchiveManifest) -> list[bytes]:
    data = await storage.get(manifest.object_key)
    return check_part(
        data,
        sha256=manifest.sha256,
        row_count=manifest.row_count,
        first_id=manifest.first_id,
        last_id=manifest.last_id,
    )


async def restore(
    db: Database,
    storage: ArchiveStorage,
    lease: RunLease,
    table_name: str,
    first_day: date,
    last_day: date,
    progress: RunProgress | None = None,
) -> RestoreReport:
    table = ARCHIVED_TABLES[table_name]
    columns = set(table.columns.keys())
    progress = progress or Silent()
    report = RestoreReport(table_name)
    if not await lease.acquire():
        raise RetentionBusy("another archive run or restore is in progress; try again later")
    error: str | None = None
    try:
        async with db.reader() as session:
            manifests = await RetentionRepository(session).manifests(
                table=table_name, first_day=first_day, last_day=last_day
            )
        progress.start(f"restore {table_name}", sum(m.row_count for m in manifests))
        for manifest in manifests:
            try:
                lines = await _read_part(storage, manifest)
                doc = json.loads(await storage.get(manifest_key(_stem(manifest.object_key))))
            except (StorageError, PartMismatch, ValueError) as exc:
                report.failed.append({"object": manifest.object_key, "error": str(exc)})
                continue
            schema = Schema.from_manifest(doc)
            unknown = set(schema.names) - columns
            if unknown:
                report.failed.append(
                    {
                        "object": manifest.object_key,
                        "error": f"columns no longer in {table_name}: {sorted(unknown)}",
                    }
                )
                continue
            decode = schema.decoder()
            for offset in range(0, len(lines), CHUNK):
                rows = [decode(line) for line in lines[offset : offset + CHUNK]]
                async with db.unit_of_work() as session:
                    await lease.fence(session)
                    repo = RetentionRepository(session)
                    present = await repo.existing_ids(table, [r["id"] for r in rows])
                    missing = [r for r in rows if r["id"] not in present]
                    await repo.insert_rows(table, missing)
                    if (
                        offset + CHUNK >= len(lines)
                        and manifest.status is not ManifestStatus.RESTORED
                    ):
                        await repo.set_manifest_status(
                            manifest.id,
                            ManifestStatus.RESTORED,
                            now=utcnow(),
                            expect=manifest.status,
                        )
                report.restored += len(missing)
                report.skipped += len(rows) - len(missing)
                metrics.RESTORED_ROWS.labels(table_name).inc(len(missing))
                progress.advance(len(rows))
            if not lines and manifest.status is not ManifestStatus.RESTORED:
                async with db.unit_of_work() as session:
                    await RetentionRepository(session).set_manifest_status(
                        manifest.id, ManifestStatus.RESTORED, now=utcnow(), expect=manifest.status
                    )
            report.parts += 1
            report.rows_in_parts += manifest.row_count
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        progress.stop()
        await lease.release(error)
    return report


@dataclass
class VerifyReport:
    checked: int = 0
    rows: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_dict(self) -> dict[str, Any]:
        return {
            "parts_checked": self.checked,
            "rows": self.rows,
            "ok": self.ok,
            "failed": self.failed,
            "orphans": self.orphans,
        }


_MANIFEST_FIELDS = ("row_count", "first_id", "last_id", "sha256", "size_bytes", "part")


async def verify(
    db: Database,
    storage: ArchiveStorage,
    *,
    table_name: str | None,
    first_day: date | None,
    last_day: date | None,
) -> VerifyReport:
    """Re-read every part in the range and check it against both manifests
    (the row in ``archive_manifest`` and the ``.manifest.json`` beside it);
    list objects no manifest row claims (left by an interrupted run, which
    the next run overwrites)."""
    report = VerifyReport()
    async with db.reader() as session:
        manifests = await RetentionRepository(session).manifests(
            table=table_name, first_day=first_day, last_day=last_day
        )
    for manifest in manifests:
        try:
            await _read_part(storage, manifest)
            doc = json.loads(await storage.get(manifest_key(_stem(manifest.object_key))))
            stored = {name: doc.get(name) for name in _MANIFEST_FIELDS}
            expected = {name: getattr(manifest, name) for name in _MANIFEST_FIELDS}
            if stored != expected:
                raise PartMismatch(f"manifest file says {stored}, database says {expected}")
        except (StorageError, PartMismatch, ValueError) as exc:
            report.failed.append({"object": manifest.object_key, "error": str(exc)})
            continue
        report.checked += 1
        report.rows += manifest.row_count
        async with db.unit_of_work() as session:
            await RetentionRepository(session).mark_verified(manifest.id, utcnow())
    known = {m.object_key for m in manifests}
    known |= {manifest_key(_stem(m.object_key)) for m in manifests}
    for name in [table_name] if table_name else list(ARCHIVED_TABLES):
        for key in await storage.list(f"{name}/"):
            day = _day_of(key)
            in_range = day is not None and (first_day is None or day >= first_day)
            in_range = in_range and (last_day is None or day <= last_day)  # type: ignore[operator]
            if in_range and key not in known:
                report.orphans.append(key)
    return report


def _day_of(key: str) -> date | None:
    parts = key.split("/")
    try:
        return date(int(parts[1]), int(parts[2]), int(parts[3]))
    except (IndexError, ValueError):
        return None
