"""Seeding history rows, a storage that fails where a test says, and the
invariant every retention test ends on: each row is in the table or in a
verified part, exactly once, unchanged."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from b24mw.kit.db import Database
from b24mw.models.base import table_of
from b24mw.models.history import HistoryEntry, IntegrationLog
from b24mw.models.ops import ArchiveManifest
from b24mw.models.returns import Return
from b24mw.retention.codec import Schema, check_part
from b24mw.retention.runner import RunOptions, RunReport, run_retention
from b24mw.retention.storage import ArchiveStorage, LocalStorage, StorageError
from b24mw.settings import Settings
from tests.support.auth import JWT_SECRET
from tests.support.config import make_settings

EVENTS = table_of(HistoryEntry)
LOG = table_of(IntegrationLog)
NOW = datetime.now(UTC)


def old_day(days_ago: int) -> date:
    return (NOW - timedelta(days=days_ago)).date()


def retention_settings(db: Database, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "archive_url": f"file://{tmp_path}/archive",
        "siem_sink": f"file://{tmp_path}/siem.jsonl",
        "archive_batch_rows": 100,
        "archive_lease_s": 60,
        # One day at a time unless a test says otherwise: faults injected at
        # the n-th storage call then hit a known part.
        "archive_parallel_days": 1,
    }
    values.update(overrides)
    return make_settings(db.url, **values)


async def add_return(db: Database) -> uuid.UUID:
    rid = uuid.uuid4()
    async with db.unit_of_work() as session:
        session.add(Return(id=rid, source="warehouse", courier_id="c1", comment="box"))
    return rid


async def seed_history(
    db: Database, per_day: dict[date, int], *, return_id: uuid.UUID | None = None
) -> None:
    """``per_day[d]`` task_events and half as many integration_log rows on day d,
    with every kind of value the archive must carry (JSON with unicode and
    nesting, nulls, microseconds, a UUID)."""
    events: list[dict[str, Any]] = []
    logs: list[dict[str, Any]] = []
    n = 0
    for day, count in sorted(per_day.items()):
        base = datetime(day.year, day.month, day.day, tzinfo=UTC)
        for i in range(count):
            n += 1
            ts = base + timedelta(seconds=(i * 977) % 86_000, microseconds=n * 13 % 1_000_000)
            events.append(
                {
                    "task_id_b24": 1000 + n % 7,
                    "return_id": return_id if n % 5 == 0 else None,
                    "ts": ts,
                    "type": ("status", "photo", "geo", "comment")[n % 4],
                    "status": "READY" if n % 3 else None,
                    "actor_id": f"courier-{n % 3}",
                    "payload_json": {"n": n, "note": "Сдал «на складе» ✓", "lat": 55.75, "x": None}
                    if n % 2
                    else {"items": [{"sku": "A-1", "price": "490.50"}], "ok": True},
                    "correlation_id": f"corr-{uuid.uuid4().hex}",
                    "photo_checksum": "ab" * 32 if n % 4 == 1 else None,
                    "request_id": f"req-{n}",
                }
            )
            if i % 2 == 0:
                logs.append(
                    {
                        "ts": ts,
                        "direction": "out",
                        "system": "b24",
                        "endpoint": "tasks.task.update",
                        "status": "ok",
                        "http_code": 200,
                        "request_id": f"req-{n}",
                        "resource_ref": f"task:{n}",
                        "request_json": {"fields": {"TITLE": "Заказ", "n": n}},
                        "response_json": [1, "two", {"three": 3.5}],
                        "error_code": None,
                        "retry_count": n % 3,
                    }
                )
    async with db.unit_of_work() as session:
        if events:
            await session.execute(insert(EVENTS), events)
        if logs:
            await session.execute(insert(LOG), logs)


async def snapshot(db: Database, table: Any = EVENTS) -> dict[int, bytes]:
    """Every row of ``table`` as its archive line, by id."""
    encode = Schema.of(table).encoder()
    async with db.reader() as session:
        rows = (await session.execute(select(table).order_by(table.c.id))).all()
    return {row.id: encode(row) for row in rows}


async def manifests(db: Database) -> list[ArchiveManifest]:
    async with db.reader() as session:
        stmt = select(ArchiveManifest).order_by(
            ArchiveManifest.table_name, ArchiveManifest.day, ArchiveManifest.part
        )
        return list((await session.execute(stmt)).scalars())


async def assert_each_row_once(
    db: Database, storage: ArchiveStorage, before: dict[int, bytes], table: Any = EVENTS
) -> tuple[int, int]:
    """Every row of ``before`` is either still in the table or in exactly one
    verified part, with its exact content; nothing else exists.  Returns
    (rows in the table, rows in the archive)."""
    in_table = await snapshot(db, table)
    archived: dict[int, bytes] = {}
    for manifest in await manifests(db):
        if manifest.table_name != table.name or manifest.status != "verified":
            continue
        lines = check_part(
            await storage.get(manifest.object_key),
            sha256=manifest.sha256,
            row_count=manifest.row_count,
            first_id=manifest.first_id,
            last_id=manifest.last_id,
        )
        for line in lines:
            row_id = json.loads(line)["id"]
            assert row_id not in archived, f"id {row_id} archived twice"
            archived[row_id] = line
    assert not set(in_table) & set(archived), "rows both in the table and archived"
    assert set(in_table) | set(archived) == set(before), "rows lost or invented"
    # Compared as values: PostgreSQL builds archive lines itself (other formatting).
    decode = Schema.of(table).decoder()
    for row_id, line in {**in_table, **archived}.items():
        assert decode(line) == decode(before[row_id]), f"id {row_id} changed"
    return len(in_table), len(archived)


async def run(
    settings: Settings,
    db: Database,
    *,
    storage: ArchiveStorage | None = None,
    days: int = 90,
    holder: str = "test",
    tables: Iterable[str] = ("task_events", "integration_log"),
    purge: bool = True,
) -> RunReport | None:
    options = RunOptions(holder=holder, older_than_days=days, tables=list(tables), purge=purge)
    return await run_retention(settings, db, options, storage=storage)


class Killed(BaseException):
    """Stands for the process dying: not an Exception, so nothing handles it."""


class FaultyStorage:
    """A real storage that fails one chosen call: ``fail = ("put", 3)`` makes the
    third put raise ``error`` (a ``StorageError`` unless given)."""

    def __init__(
        self,
        inner: LocalStorage,
        fail: tuple[str, int] | None = None,
        error: BaseException | None = None,
        corrupt_get: int | None = None,
    ) -> None:
        self.inner = inner
        self.url = inner.url
        self.fail = fail
        self.error = error or StorageError("injected failure")
        self.corrupt_get = corrupt_get
        self.calls = {"put": 0, "get": 0, "list": 0}

    def _tick(self, op: str) -> None:
        self.calls[op] += 1
        if self.fail == (op, self.calls[op]):
            raise self.error

    async def put(self, key: str, data: bytes) -> None:
        self._tick("put")
        await self.inner.put(key, data)

    async def get(self, key: str) -> bytes:
        self._tick("get")
        data = await self.inner.get(key)
        if self.corrupt_get == self.calls["get"]:
            # A flipped byte in the middle, as a bad disk or proxy would.
            middle = len(data) // 2
            data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
        return data

    async def list(self, prefix: str) -> list[str]:
        self._tick("list")
        return await self.inner.list(prefix)


# A killed run's lease expires this soon, so a rerun can take over in a test.
LEASE_S = 2


def archive_env(db: Database, archive: Path, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("B24MW_")}
    env.update(
        B24MW_DATABASE_URL=db.url,
        B24MW_JWT_SECRET=JWT_SECRET,
        B24MW_ARCHIVE_URL=f"file://{archive}",
        B24MW_ARCHIVE_BATCH_ROWS="100",
        B24MW_ARCHIVE_LEASE_S=str(LEASE_S),
        B24MW_SIEM_SINK=f"file://{tmp_path}/siem.jsonl",
        B24MW_LOG_LEVEL="WARNING",
    )
    return env
