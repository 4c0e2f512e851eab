"""The archive run: what goes, what stays, what the archive holds."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from alembic.script import ScriptDirectory

from b24mw.kit.db import Database
from b24mw.migrations import alembic_config
from b24mw.retention.flows import boundary_for
from b24mw.retention.storage import LocalStorage
from tests.retention.helpers import (
    EVENTS,
    LOG,
    NOW,
    add_return,
    assert_each_row_once,
    manifests,
    old_day,
    retention_settings,
    run,
    seed_history,
    snapshot,
)

# The manifest records the schema the rows were read under: the migrated head.
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


async def test_rows_older_than_the_window_are_archived_by_day_and_deleted(
    db: Database, tmp_path: Path
) -> None:
    rid = await add_return(db)
    await seed_history(
        db, {old_day(120): 250, old_day(95): 30, old_day(89): 40, old_day(1): 5}, return_id=rid
    )
    before, before_log = await snapshot(db), await snapshot(db, LOG)
    settings = retention_settings(db, tmp_path)
    storage = LocalStorage(tmp_path / "archive")

    report = await run(settings, db, storage=storage)

    assert report is not None
    events = report.tables[0].as_dict()
    assert (events["table"], events["rows"], events["days"]) == ("task_events", 280, 2)
    assert events["parts"] == 4  # 250 rows in parts of 100 -> 3, and 1 for day -95
    kept, archived = await assert_each_row_once(db, storage, before)
    assert (kept, archived) == (45, 280)
    await assert_each_row_once(db, storage, before_log, LOG)
    boundary = boundary_for(NOW, 90)
    async with db.reader() as session:
        from sqlalchemy import func, select

        oldest = (await session.execute(select(func.min(EVENTS.c.ts)))).scalar_one()
    assert oldest >= boundary
    parts = [m for m in await manifests(db) if m.table_name == "task_events"]
    day = old_day(120)
    assert [(m.day, m.part, m.row_count) for m in parts[:3]] == [
        (day, 1, 100),
        (day, 2, 100),
        (day, 3, 50),
    ]
    first = parts[0]
    assert first.object_key == f"task_events/{day:%Y/%m/%d}/part-1.jsonl.gz"
    assert first.status == "verified" and first.schema_revision == HEAD
    assert parts[0].last_id < parts[1].first_id


async def test_a_part_carries_its_manifest_and_typed_columns(db: Database, tmp_path: Path) -> None:
    rid = await add_return(db)
    await seed_history(db, {old_day(100): 10}, return_id=rid)
    settings = retention_settings(db, tmp_path)
    root = tmp_path / "archive"
    await run(settings, db, storage=LocalStorage(root))

    day = old_day(100)
    folder = root / f"task_events/{day:%Y/%m/%d}"
    assert sorted(p.name for p in folder.iterdir()) == [
        "part-1.jsonl.gz",
        "part-1.manifest.json",
    ]
    doc = json.loads((folder / "part-1.manifest.json").read_text())
    [row] = await manifests(db) and [
        m for m in await manifests(db) if m.table_name == "task_events"
    ]
    assert {k: doc[k] for k in ("row_count", "first_id", "last_id", "sha256", "part")} == {
        "row_count": 10,
        "first_id": row.first_id,
        "last_id": row.last_id,
        "sha256": row.sha256,
        "part": 1,
    }
    assert doc["schema_revision"] == HEAD and doc["format"] == "b24mw-archive/1"
    kinds = {c["name"]: c["kind"] for c in doc["columns"]}
    assert kinds["ts"] == "datetime" and kinds["return_id"] == "uuid"
    assert kinds["payload_json"] == "json" and kinds["id"] == "int"
    lines = gzip.decompress((folder / "part-1.jsonl.gz").read_bytes()).splitlines()
    first = json.loads(lines[0])
    assert list(first) == [c["name"] for c in doc["columns"]]
    assert first["ts"].endswith("+00:00")
    with_uuid = [json.loads(line) for line in lines if json.loads(line)["return_id"]]
    assert with_uuid and with_uuid[0]["return_id"] == str(rid)


async def test_a_second_run_finds_nothing_and_writes_nothing(db: Database, tmp_path: Path) -> None:
    await seed_history(db, {old_day(100): 120})
    before = await snapshot(db)
    settings = retention_settings(db, tmp_path)
    storage = LocalStorage(tmp_path / "archive")
    await run(settings, db, storage=storage)
    files = sorted((tmp_path / "archive").rglob("*"))

    again = await run(settings, db, storage=storage)

    assert again is not None and again.rows == 0
    assert sorted((tmp_path / "archive").rglob("*")) == files
    await assert_each_row_once(db, storage, before)


async def test_older_than_and_table_narrow_the_run(db: Database, tmp_path: Path) -> None:
    await seed_history(db, {old_day(40): 20, old_day(20): 10})
    before_log = await snapshot(db, LOG)
    settings = retention_settings(db, tmp_path)
    storage = LocalStorage(tmp_path / "archive")

    report = await run(settings, db, storage=storage, days=30, tables=["task_events"])

    assert report is not None and [t.table for t in report.tables] == ["task_events"]
    assert report.tables[0].rows == 20
    assert await snapshot(db, LOG) == before_log  # the other table was not touched


async def test_each_delete_writes_a_siem_line(db: Database, tmp_path: Path) -> None:
    await seed_history(db, {old_day(100): 150})
    settings = retention_settings(db, tmp_path)
    await run(settings, db, storage=LocalStorage(tmp_path / "archive"), tables=["task_events"])

    lines = [json.loads(x) for x in (tmp_path / "siem.jsonl").read_text().splitlines()]
    deletes = [x for x in lines if x["event"] == "retention_delete"]
    assert [(x["table"], x["rows"], x["part"]) for x in deletes] == [
        ("task_events", 100, 1),
        ("task_events", 50, 2),
    ]
    parts = await manifests(db)
    assert deletes[0]["first_id"] == parts[0].first_id
    assert deletes[0]["sha256"] == parts[0].sha256
    assert deletes[0]["object"].endswith(parts[0].object_key) and deletes[0]["actor"] == "test"


async def test_json_written_across_lines_stays_one_archive_line(
    db: Database, tmp_path: Path
) -> None:
    """JSON stored by another writer with line breaks (PostgreSQL keeps a json
    value's text as given) must not split a row over two archive lines."""
    from sqlalchemy import text

    day = old_day(100)
    ts = f"'{day.isoformat()} 10:00:00{'' if db.is_sqlite else '+00'}'"
    async with db.unit_of_work() as session:
        await session.execute(
            text(
                "INSERT INTO task_events (ts, type, payload_json, actor_id)"
                f" VALUES ({ts}, 'comment', :payload, :actor)"
            ),
            {
                "payload": '{\n  "text": "line one\\nline two",\r\n  "n": [1,\n 2]\n}',
                "actor": "someone",
            },
        )
    storage = LocalStorage(tmp_path / "archive")
    await run(retention_settings(db, tmp_path), db, storage=storage, tables=["task_events"])

    [part] = await manifests(db)
    assert part.row_count == 1
    from b24mw.retention.lease import RunLease
    from b24mw.retention.restore import restore

    await restore(db, storage, RunLease(db, "r", 60), "task_events", day, day)
    async with db.reader() as session:
        from sqlalchemy import select

        payload = (await session.execute(select(EVENTS.c.payload_json))).scalar_one()
    assert payload == {"text": "line one\nline two", "n": [1, 2]}
