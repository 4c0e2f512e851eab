"""Restore writes rows back exactly, idempotently, and the next run takes them
away again without archiving them twice."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import select, update

from b24mw.kit.db import Database
from b24mw.models.enums import OrderStatus
from b24mw.retention.lease import RunLease
from b24mw.retention.restore import RetentionBusy, restore, verify
from b24mw.retention.storage import LocalStorage
from tests.retention.helpers import (
    EVENTS,
    LOG,
    NOW,
    assert_each_row_once,
    manifests,
    old_day,
    retention_settings,
    run,
    seed_history,
    snapshot,
)
from tests.support.auth import auth
from tests.support.orders import ORDERS, create_order, walk_to


async def shift_back(db: Database, by: timedelta) -> None:
    """Move every history row ``by`` into the past (as if it were that old)."""
    async with db.unit_of_work() as session:
        for table in (EVENTS, LOG):
            rows = (await session.execute(select(table.c.id, table.c.ts))).all()
            for row_id, ts in rows:
                stmt = update(table).where(table.c.id == row_id).values(ts=ts - by)
                await session.execute(stmt)


async def test_restored_order_history_reads_through_the_api_as_before(
    db: Database, tmp_path: Path, client: httpx.AsyncClient, couriers: object
) -> None:
    order = await create_order(client, courier_id="c1")
    url = f"{ORDERS}/{order['id']}"
    await walk_to(client, url, OrderStatus.DELIVERED)
    # The order's history happened 100 days ago.
    await shift_back(db, timedelta(days=100))
    headers = auth("admin", "boss")
    before = (await client.get(f"{url}/events", headers=headers)).json()
    assert len(before["items"]) >= 5
    settings = retention_settings(db, tmp_path)
    storage = LocalStorage(tmp_path / "archive")

    await run(settings, db, storage=storage)
    archived = (await client.get(f"{url}/events", headers=headers)).json()
    assert archived["items"] == []
    day = (NOW - timedelta(days=100)).date()
    lease = RunLease(db, "restorer", 60)
    report = await restore(db, storage, lease, "task_events", day - timedelta(days=1), day)

    after = (await client.get(f"{url}/events", headers=headers)).json()
    assert after == before
    assert report.restored == len(before["items"]) and report.skipped == 0


async def test_restore_twice_skips_existing_ids_and_reports_counts(
    db: Database, tmp_path: Path
) -> None:
    await seed_history(db, {old_day(120): 130, old_day(110): 20})
    original = await snapshot(db)
    settings = retention_settings(db, tmp_path)
    storage = LocalStorage(tmp_path / "archive")
    await run(settings, db, storage=storage)
    lease = RunLease(db, "restorer", 60)
    day = old_day(120)

    first = await restore(db, storage, lease, "task_events", day, day)
    second = await restore(db, storage, lease, "task_events", day, day)

    assert (first.parts, first.restored, first.skipped) == (2, 130, 0)
    assert (second.parts, second.restored, second.skipped) == (2, 0, 130)
    restored = await snapshot(db)
    assert restored == {k: v for k, v in original.items() if k in restored}
    assert len(restored) == 130
    statuses = {
        (m.day, m.part): m.status for m in await manifests(db) if m.table_name == "task_events"
    }
    assert statuses == {(day, 1): "restored", (day, 2): "restored", (old_day(110), 1): "verified"}


async def test_the_next_run_reseals_restored_rows_without_a_second_copy(
    db: Database, tmp_path: Path
) -> None:
    await seed_history(db, {old_day(120): 150})
    original = await snapshot(db)
    settings = retention_settings(db, tmp_path)
    storage = LocalStorage(tmp_path / "archive")
    await run(settings, db, storage=storage)
    lease = RunLease(db, "restorer", 60)
    await restore(db, storage, lease, "task_events", old_day(120), old_day(120))
    files = sorted(p.name for p in (tmp_path / "archive").rglob("*.gz"))

    report = await run(settings, db, storage=storage)

    assert report is not None and report.tables[0].resealed_rows == 150
    assert report.tables[0].parts == 0
    assert sorted(p.name for p in (tmp_path / "archive").rglob("*.gz")) == files
    await assert_each_row_once(db, storage, original)
    assert {m.status for m in await manifests(db)} == {"verified"}


async def test_a_restored_row_changed_since_stays_in_the_table(
    db: Database, tmp_path: Path
) -> None:
    await seed_history(db, {old_day(120): 30})
    settings = retention_settings(db, tmp_path)
    storage = LocalStorage(tmp_path / "archive")
    await run(settings, db, storage=storage, tables=["task_events"])
    lease = RunLease(db, "restorer", 60)
    await restore(db, storage, lease, "task_events", old_day(120), old_day(120))
    async with db.unit_of_work() as session:
        await session.execute(update(EVENTS).where(EVENTS.c.id % 7 == 0).values(actor_id="edited"))
    edited = await snapshot(db)

    report = await run(settings, db, storage=storage, tables=["task_events"])

    assert report is not None and report.tables[0].kept_restored_rows == 30
    assert report.tables[0].rows == 0  # not archived a second time either
    assert await snapshot(db) == edited


async def test_restore_waits_for_a_running_archive(db: Database, tmp_path: Path) -> None:
    await seed_history(db, {old_day(120): 10})
    settings = retention_settings(db, tmp_path)
    storage = LocalStorage(tmp_path / "archive")
    await run(settings, db, storage=storage)
    running = RunLease(db, "worker:a", 60)
    assert await running.acquire()

    try:
        await restore(
            db, storage, RunLease(db, "cli", 60), "task_events", old_day(120), old_day(120)
        )
    except RetentionBusy:
        pass
    else:
        raise AssertionError("restore ran beside a run holding the lease")
    assert await snapshot(db) == {}


async def test_verify_reports_a_damaged_part_and_orphans(db: Database, tmp_path: Path) -> None:
    await seed_history(db, {old_day(120): 150})
    settings = retention_settings(db, tmp_path)
    root = tmp_path / "archive"
    storage = LocalStorage(root)
    await run(settings, db, storage=storage, tables=["task_events"])
    good = await verify(db, storage, table_name=None, first_day=None, last_day=None)
    assert good.ok and good.checked == 2 and good.rows == 150 and good.orphans == []
    part = root / f"task_events/{old_day(120):%Y/%m/%d}/part-2.jsonl.gz"
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    orphan = root / f"task_events/{old_day(120):%Y/%m/%d}/part-3.jsonl.gz"
    orphan.write_bytes(b"left by a killed run")

    bad = await verify(db, storage, table_name="task_events", first_day=None, last_day=None)

    assert not bad.ok and bad.checked == 1
    assert [f["object"] for f in bad.failed] == [part.relative_to(root).as_posix()]
    assert "sha256" in bad.failed[0]["error"]
    assert bad.orphans == [orphan.relative_to(root).as_posix()]
