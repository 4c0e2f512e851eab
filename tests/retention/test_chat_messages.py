"""Customer chat messages follow task history: 90 days in the database, then
the archive; restore brings them back exactly."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert

from b24mw.kit.db import Database
from b24mw.models.base import table_of
from b24mw.models.support import ChatMessage, ChatSession
from b24mw.retention.lease import RunLease
from b24mw.retention.restore import restore
from b24mw.retention.storage import LocalStorage
from tests.retention.helpers import NOW, assert_each_row_once, retention_settings, run, snapshot

MESSAGES = table_of(ChatMessage)


async def seed(db: Database) -> None:
    async with db.unit_of_work() as session:
        row = ChatSession(
            b24_session_id=77,
            status="closed",
            stored_message_id=0,
            seen_message_id=0,
            read_due=False,
        )
        session.add(row)
        await session.flush()
        await session.execute(
            insert(MESSAGES),
            [
                {
                    "b24_message_id": 1000 + i,
                    "session_id": row.id,
                    "sender_kind": "client",
                    "sender_id": 5,
                    "ts": NOW - timedelta(days=days),
                    "text_bbcode": f"[b]m{i}[/b]",
                    "text_plain": f"m{i}",
                }
                for i, days in enumerate([120, 120, 100, 30, 1])
            ],
        )


async def test_old_messages_are_archived_and_restored_exactly(db: Database, tmp_path: Path) -> None:
    await seed(db)
    before = await snapshot(db, MESSAGES)
    settings = retention_settings(db, tmp_path)
    storage = LocalStorage(tmp_path / "archive")
    await run(settings, db, storage=storage, tables=["chat_messages"])
    kept, archived = await assert_each_row_once(db, storage, before, MESSAGES)
    assert (kept, archived) == (2, 3)

    lease = RunLease(db, "restorer", 60)
    day = (NOW - timedelta(days=120)).date()
    report = await restore(db, storage, lease, "chat_messages", day, day)
    assert report.restored == 2
    after = await snapshot(db, MESSAGES)
    assert {k: v for k, v in after.items() if k in before} == {k: before[k] for k in after}
    assert len(after) == 4
