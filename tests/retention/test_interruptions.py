"""An interruption at any step leaves every row in the table or in a verified
part, and the next run finishes the job without losing or duplicating one."""

from __future__ import annotations

import asyncio
import errno
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text, update

from b24mw.kit.db import Database
from b24mw.models.base import utcnow
from b24mw.retention.codec import PartMismatch
from b24mw.retention.lease import LeaseLost
from b24mw.retention.repository import LEASES
from b24mw.retention.restore import verify
from b24mw.retention.storage import LocalStorage, StorageError
from tests.retention.helpers import (
    FaultyStorage,
    Killed,
    assert_each_row_once,
    manifests,
    old_day,
    retention_settings,
    run,
    seed_history,
    snapshot,
)

ROWS = 450  # five parts of 100 rows and one of 50, over two days


async def _seeded(db: Database) -> dict[int, bytes]:
    await seed_history(db, {old_day(130): 250, old_day(120): 200})
    return await snapshot(db)


# (which call fails, what it raises, rows archived before it): each part is
# put (data), put (manifest), get (read back), then the delete transaction;
# day 1 is parts 1-3 (100, 100, 50 rows), day 2 parts 1-2.
FAULTS: dict[str, tuple[tuple[str, int], BaseException, int]] = {
    "upload_of_part_2": (("put", 3), StorageError("connection reset"), 100),
    "manifest_of_part_2": (("put", 4), StorageError("503 slow down"), 100),
    "read_back_of_part_3": (("get", 3), StorageError("timeout"), 200),
    "killed_after_upload_of_part_2": (("get", 2), Killed(), 100),
    "no_space_on_day_2": (("put", 7), StorageError(OSError(errno.ENOSPC, "No space")), 250),
}


@pytest.mark.parametrize("parallel_days", [1, 2])
@pytest.mark.parametrize("fault", list(FAULTS))
async def test_a_storage_failure_at_any_step_loses_and_duplicates_nothing(
    db: Database, tmp_path: Path, fault: str, parallel_days: int
) -> None:
    before = await _seeded(db)
    settings = retention_settings(db, tmp_path, archive_parallel_days=parallel_days)
    inner = LocalStorage(tmp_path / "archive")
    call, error, done = FAULTS[fault]

    with pytest.raises(type(error)):
        await run(settings, db, storage=FaultyStorage(inner, call, error), tables=["task_events"])

    kept, archived = await assert_each_row_once(db, inner, before)
    if parallel_days == 1 or db.is_sqlite:  # two days at once: whichever got there first
        assert (kept, archived) == (ROWS - done, done)
    assert kept > 0
    report = await run(settings, db, storage=inner, holder="again", tables=["task_events"])
    assert report is not None
    assert await assert_each_row_once(db, inner, before) == (0, ROWS)
    checked = await verify(db, inner, table_name="task_events", first_day=None, last_day=None)
    assert checked.ok and checked.rows == ROWS and checked.orphans == []


async def test_a_part_that_reads_back_damaged_is_not_deleted(db: Database, tmp_path: Path) -> None:
    before = await _seeded(db)
    settings = retention_settings(db, tmp_path)
    inner = LocalStorage(tmp_path / "archive")

    with pytest.raises(PartMismatch):
        await run(settings, db, storage=FaultyStorage(inner, corrupt_get=2), tables=["task_events"])

    assert await assert_each_row_once(db, inner, before) == (ROWS - 100, 100)
    await run(settings, db, storage=inner, tables=["task_events"])
    assert await assert_each_row_once(db, inner, before) == (0, ROWS)


async def test_a_database_error_at_delete_keeps_the_rows(db: Database, tmp_path: Path) -> None:
    before = await _seeded(db)
    settings = retention_settings(db, tmp_path)
    storage = LocalStorage(tmp_path / "archive")
    async with db.engine.begin() as conn:
        for statement in _refuse_deletes(db):
            await conn.execute(text(statement))
    try:
        with pytest.raises(Exception, match="deletes refused"):
            await run(settings, db, storage=storage, tables=["task_events"])
    finally:
        async with db.engine.begin() as conn:
            drop = "DROP TRIGGER refuse_deletes"
            await conn.execute(text(drop if db.is_sqlite else f"{drop} ON task_events"))

    assert await assert_each_row_once(db, storage, before) == (ROWS, 0)
    assert await manifests(db) == []
    # The uploaded part is an orphan until the next run overwrites it.
    orphans = await verify(db, storage, table_name="task_events", first_day=None, last_day=None)
    assert len(orphans.orphans) == 2
    await run(settings, db, storage=storage, tables=["task_events"])
    assert await assert_each_row_once(db, storage, before) == (0, ROWS)


def _refuse_deletes(db: Database) -> list[str]:
    if db.is_sqlite:
        return [
            "CREATE TRIGGER refuse_deletes BEFORE DELETE ON task_events"
            " BEGIN SELECT RAISE(ABORT, 'deletes refused'); END"
        ]
    return [
        "CREATE OR REPLACE FUNCTION refuse_deletes() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'deletes refused'; END $$",
        "CREATE TRIGGER refuse_deletes BEFORE DELETE ON task_events"
        " FOR EACH ROW EXECUTE FUNCTION refuse_deletes()",
    ]


class StealLease(FaultyStorage):
    """Another run takes the lease over while this one uploads part 2 (as if
    this one had stalled past its lease)."""

    def __init__(self, inner: LocalStorage, db: Database) -> None:
        super().__init__(inner)
        self.db = db

    async def put(self, key: str, data: bytes) -> None:
        await super().put(key, data)
        if self.calls["put"] == 3:
            async with self.db.unit_of_work() as session:
                await session.execute(update(LEASES).values(holder="other", lease_until=utcnow()))


async def test_a_run_that_lost_its_lease_deletes_nothing_more(db: Database, tmp_path: Path) -> None:
    before = await _seeded(db)
    settings = retention_settings(db, tmp_path)
    inner = LocalStorage(tmp_path / "archive")

    with pytest.raises(LeaseLost):
        await run(settings, db, storage=StealLease(inner, db), tables=["task_events"])

    assert await assert_each_row_once(db, inner, before) == (ROWS - 100, 100)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: a real "No space left on device" for the local backend."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None or (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


async def test_a_full_disk_stops_the_run_and_a_later_run_finishes(
    db: Database, tmp_path: Path, small_disk: Path
) -> None:
    await seed_history(db, {old_day(130): 1500, old_day(120): 1500})
    before = await snapshot(db)
    settings = retention_settings(db, tmp_path)
    storage = LocalStorage(small_disk / "archive")

    with pytest.raises(StorageError, match="No space left"):
        await run(settings, db, storage=storage, tables=["task_events"])

    kept, archived = await assert_each_row_once(db, storage, before)
    assert archived > 0 and kept > 0
    leftovers = await asyncio.to_thread(lambda: list(small_disk.rglob("*.tmp")))
    assert leftovers == []
    remount = ["mount", "-o", "remount,size=16m", str(small_disk)]
    await asyncio.to_thread(subprocess.run, remount, check=True)
    await run(settings, db, storage=storage, holder="after-cleanup", tables=["task_events"])
    assert await assert_each_row_once(db, storage, before) == (0, 3000)
