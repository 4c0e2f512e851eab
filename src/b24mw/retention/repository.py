"""SQL of retention: archive batches, manifests, the run's lease, restores."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Row,
    Select,
    Table,
    Text,
    and_,
    any_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    not_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import JSON as PG_JSON
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.models.base import table_of
from b24mw.models.enums import ManifestStatus
from b24mw.models.ops import ArchiveManifest, JobLease

MANIFEST = table_of(ArchiveManifest)
LEASES = table_of(JobLease)


def _json_value(column: Any, kind: str) -> Any:
    """The value as the Python encoder writes it (``codec.KINDS``)."""
    if kind == "datetime":
        utc = func.timezone("UTC", column)
        return func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')
    if kind == "decimal":
        return cast(column, Text)
    if kind == "bytes":
        return func.translate(func.encode(column, "base64"), "\n", "")
    if kind == "json":
        # A json value keeps its text, line breaks included; outside strings
        # (inside, PostgreSQL only accepts them escaped) they are mere
        # whitespace, and a raw one would split the archive line in two.
        return cast(func.translate(cast(column, Text), "\r\n", "  "), PG_JSON)
    return column


class RetentionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def _is_postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    def ids_in(self, column: Any, ids: Sequence[int]) -> ColumnElement[bool]:
        """``column`` is one of ``ids``, as one bound value whatever their number
        (an expanded IN of 20,000 ids would exceed the drivers' parameter limits)."""
        if self._is_postgres:
            return column == any_(bindparam("ids", list(ids), type_=ARRAY(BigInteger)))
        return column.in_(select(text("value")).select_from(text("json_each(:ids)"))).params(
            ids=json.dumps(list(ids))
        )

    # --- archive batches ---------------------------------------------------------

    async def oldest_ts(
        self, table: Table, *, before: datetime, since: datetime
    ) -> datetime | None:
        stmt = select(func.min(table.c.ts)).where(table.c.ts < before, table.c.ts >= since)
        value = (await self.session.execute(stmt)).scalar_one_or_none()
        # min() loses the column type on SQLite: bring it back through the column.
        if isinstance(value, str):
            value = table.c.ts.type.process_result_value(value, self.session.get_bind().dialect)  # type: ignore[attr-defined]
        return value

    async def first_id(self, table: Table, start: datetime, end: datetime) -> int | None:
        """The smallest id of a day, found through the ``ts`` index.  (``id + 0``
        keeps PostgreSQL from walking the primary key instead, through the
        index entries of every row an earlier day's parts just deleted.)"""
        stmt = select(func.min(table.c.id + 0)).where(table.c.ts >= start, table.c.ts < end)
        value = (await self.session.execute(stmt)).scalar_one_or_none()
        return None if value is None else int(value)

    async def count_between(self, table: Table, start: datetime, end: datetime) -> int:
        stmt = select(func.count()).select_from(table).where(table.c.ts >= start, table.c.ts < end)
        return int((await self.session.execute(stmt)).scalar_one())

    def _rows(
        self,
        columns: Sequence[Any],
        table: Table,
        start: datetime,
        end: datetime,
        *,
        after_id: int = 0,
        limit: int | None = None,
        skip: Sequence[tuple[int, int]] = (),
        ids_between: tuple[int, int] | None = None,
    ) -> Select[Any]:
        stmt = select(*columns).where(table.c.ts >= start, table.c.ts < end, table.c.id > after_id)
        for first, last in skip:
            stmt = stmt.where(not_(table.c.id.between(first, last)))
        if ids_between is not None:
            stmt = stmt.where(table.c.id.between(*ids_between))
        return stmt.order_by(table.c.id).limit(limit)

    async def rows(
        self, table: Table, start: datetime, end: datetime, **where: Any
    ) -> Sequence[Row[Any]]:
        """Rows of one day in id order: ``after_id``, ``limit``, ``skip`` (id
        ranges of restored parts, already archived), ``ids_between``."""
        stmt = self._rows(list(table.columns), table, start, end, **where)
        return (await self.session.execute(stmt)).all()

    async def rows_as_json(
        self, table: Table, kinds: Sequence[str], start: datetime, end: datetime, **where: Any
    ) -> Sequence[Row[Any]]:
        """PostgreSQL only: ``rows`` as ``(id, line)``, each line built by the
        server (``row_to_json`` of the row with its values as the Python
        encoder writes them): a JSON column's text is carried as stored, and
        the run spends no Python time per value."""
        values = [
            _json_value(column, kind).label(column.name)
            for column, kind in zip(table.columns, kinds, strict=True)
        ]
        batch = self._rows(values, table, start, end, **where).subquery("r")
        line = cast(func.row_to_json(batch.table_valued()), Text).label("line")
        stmt = select(batch.c.id, line).order_by(batch.c.id)
        return (await self.session.execute(stmt)).all()

    async def delete_ids(self, table: Table, ids: Sequence[int]) -> int:
        result: Any = await self.session.execute(delete(table).where(self.ids_in(table.c.id, ids)))
        return int(result.rowcount)

    async def existing_ids(self, table: Table, ids: Sequence[int]) -> set[int]:
        stmt = select(table.c.id).where(self.ids_in(table.c.id, ids))
        return set((await self.session.execute(stmt)).scalars())

    async def insert_rows(self, table: Table, rows: list[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(insert(table), rows)

    # --- manifests ---------------------------------------------------------------

    async def next_part(self, table: str, day: date) -> int:
        stmt = select(func.coalesce(func.max(MANIFEST.c.part), 0)).where(
            MANIFEST.c.table_name == table, MANIFEST.c.day == day
        )
        return int((await self.session.execute(stmt)).scalar_one()) + 1

    async def restored_ranges(self, table: str, day: date) -> list[tuple[int, int]]:
        stmt = select(MANIFEST.c.first_id, MANIFEST.c.last_id).where(
            MANIFEST.c.table_name == table,
            MANIFEST.c.day == day,
            MANIFEST.c.status == ManifestStatus.RESTORED,
        )
        return [(int(first), int(last)) for first, last in (await self.session.execute(stmt)).all()]

    async def add_manifest(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(MANIFEST), values)

    async def manifests(
        self,
        *,
        table: str | None = None,
        first_day: date | None = None,
        last_day: date | None = None,
        status: ManifestStatus | None = None,
    ) -> Sequence[ArchiveManifest]:
        stmt = select(ArchiveManifest)
        if table is not None:
            stmt = stmt.where(ArchiveManifest.table_name == table)
        if first_day is not None:
            stmt = stmt.where(ArchiveManifest.day >= first_day)
        if last_day is not None:
            stmt = stmt.where(ArchiveManifest.day <= last_day)
        if status is not None:
            stmt = stmt.where(ArchiveManifest.status == status)
        stmt = stmt.order_by(ArchiveManifest.table_name, ArchiveManifest.day, ArchiveManifest.part)
        return (await self.session.execute(stmt)).scalars().all()

    async def set_manifest_status(
        self, manifest_id: int, status: ManifestStatus, *, now: datetime, expect: ManifestStatus
    ) -> bool:
        values: dict[str, Any] = {"status": status}
        values["restored_at" if status is ManifestStatus.RESTORED else "verified_at"] = now
        stmt = (
            update(MANIFEST)
            .where(MANIFEST.c.id == manifest_id, MANIFEST.c.status == expect)
            .values(**values)
        )
        result: Any = await self.session.execute(stmt)
        return bool(result.rowcount == 1)

    async def mark_verified(self, manifest_id: int, now: datetime) -> None:
        stmt = update(MANIFEST).where(MANIFEST.c.id == manifest_id).values(verified_at=now)
        await self.session.execute(stmt)

    # --- the run's lease ---------------------------------------------------------

    async def ensure_lease(self, name: str) -> None:
        insert_ = pg_insert if self._is_postgres else sqlite_insert
        stmt = insert_(LEASES).values(name=name).on_conflict_do_nothing(index_elements=["name"])
        await self.session.execute(stmt)

    async def acquire(
        self,
        name: str,
        holder: str,
        *,
        now: datetime,
        until: datetime,
        started_before: datetime | None = None,
    ) -> bool:
        """Take the lease when nobody holds an unexpired one (and, for the daily
        run, when the last run started before ``started_before``)."""
        free = (LEASES.c.holder.is_(None)) | (LEASES.c.lease_until < now)
        cond = and_(LEASES.c.name == name, free)
        if started_before is not None:
            cond = and_(
                cond,
                (LEASES.c.last_started_at.is_(None)) | (LEASES.c.last_started_at < started_before),
            )
        stmt = (
            update(LEASES).where(cond).values(holder=holder, lease_until=until, last_started_at=now)
        )
        result: Any = await self.session.execute(stmt)
        return bool(result.rowcount == 1)

    async def renew(self, name: str, holder: str, *, now: datetime, until: datetime) -> bool:
        """Extend a lease still held; False when it expired (another run may own it)."""
        stmt = (
            update(LEASES)
            .where(LEASES.c.name == name, LEASES.c.holder == holder, LEASES.c.lease_until >= now)
            .values(lease_until=until)
        )
        result: Any = await self.session.execute(stmt)
        return bool(result.rowcount == 1)

    async def release(self, name: str, holder: str, *, now: datetime, error: str | None) -> None:
        values: dict[str, Any] = {"holder": None, "lease_until": None}
        if error is None:
            values["last_success_at"] = now
        else:
            values.update(last_failure_at=now, last_error=error[:2000])
        stmt = update(LEASES).where(LEASES.c.name == name, LEASES.c.holder == holder)
        await self.session.execute(stmt.values(**values))

    async def job(self, name: str) -> JobLease | None:
        return await self.session.get(JobLease, name)

    async def schema_revision(self) -> str:
        stmt = text("SELECT version_num FROM alembic_version")
        revisions = sorted((await self.session.execute(stmt)).scalars())
        return "+".join(revisions) or "unknown"
