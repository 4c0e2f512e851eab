"""The daily run's purges: each window is a setting, and only what has
outlived its window goes."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from b24mw.kit.db import Database
from b24mw.models.base import table_of, utcnow
from b24mw.models.ops import IdempotencyKey, OutboxJob, WebhookInbox
from b24mw.retention.storage import LocalStorage
from tests.retention.helpers import retention_settings, run

KEYS, INBOX, OUTBOX = table_of(IdempotencyKey), table_of(WebhookInbox), table_of(OutboxJob)


async def _seed(db: Database) -> None:
    now = utcnow()

    def ago(days: float) -> Any:
        return now - timedelta(days=days)

    keys = [
        {"key": name, "endpoint": "/x", "actor_id": "a", "fingerprint": "f", "state": "done",
         "created_at": ago(4), "locked_at": ago(4), "expires_at": expires}
        for name, expires in (("expired", ago(1)), ("live", now + timedelta(hours=1)))
    ]  # fmt: skip
    inbox = [
        {"dedupe_key": name, "event": "ONTASKUPDATE", "payload": {}, "status": status,
         "attempts": 1, "next_attempt_at": ago(9), "errors": [], "received_at": ago(9),
         "processed_at": processed}
        for name, status, processed in (
            ("done-old", "done", ago(8)),
            ("rejected-old", "rejected", ago(8)),
            ("done-recent", "done", ago(6)),
            ("failed-old", "failed", ago(8)),
            ("pending-old", "pending", None),
        )
    ]  # fmt: skip
    outbox = [
        {"kind": "b24.call", "payload": {"name": name}, "status": status, "attempts": 1,
         "next_attempt_at": ago(40), "error_history": [], "created_at": ago(40),
         "updated_at": ago(40), "finished_at": finished, "discarded_at": discarded}
        for name, status, finished, discarded in (
            ("done-old", "done", ago(8), None),
            ("done-recent", "done", ago(6), None),
            ("discarded-old", "done", ago(31), ago(31)),
            ("discarded-recent", "done", ago(10), ago(10)),
            ("dead-waiting", "dead", ago(60), None),
            ("pending", "pending", None, None),
        )
    ]  # fmt: skip
    async with db.unit_of_work() as session:
        await session.execute(insert(KEYS), keys)
        await session.execute(insert(INBOX), inbox)
        await session.execute(insert(OUTBOX), outbox)


async def _left(db: Database) -> dict[str, list[str]]:
    async with db.reader() as session:
        keys = (await session.execute(select(KEYS.c.key).order_by(KEYS.c.key))).scalars()
        inbox = await session.execute(select(INBOX.c.dedupe_key).order_by(INBOX.c.dedupe_key))
        outbox = (await session.execute(select(OUTBOX.c.payload))).scalars()
        return {
            "keys": list(keys),
            "inbox": list(inbox.scalars()),
            "outbox": sorted(p["name"] for p in outbox),
        }


async def test_purges_remove_only_rows_past_their_window(db: Database, tmp_path: Path) -> None:
    await _seed(db)
    settings = retention_settings(db, tmp_path)

    report = await run(settings, db, storage=LocalStorage(tmp_path / "archive"))

    assert report is not None
    assert report.purged == {
        "idempotency_key": 1,
        "webhook_inbox": 2,
        "outbox": 1,
        "outbox_dlq": 1,
    }
    assert await _left(db) == {
        "keys": ["live"],
        "inbox": ["done-recent", "failed-old", "pending-old"],
        "outbox": ["dead-waiting", "discarded-recent", "done-recent", "pending"],
    }
    lines = [json.loads(x) for x in (tmp_path / "siem.jsonl").read_text().splitlines()]
    purges = sorted((x["table"], x["rows"]) for x in lines if x["event"] == "retention_delete")
    assert purges == [("idempotency_key", 1), ("outbox", 1), ("outbox", 1), ("webhook_inbox", 2)]


async def test_every_window_is_a_setting(db: Database, tmp_path: Path) -> None:
    await _seed(db)
    settings = retention_settings(
        db,
        tmp_path,
        purge_inbox_after_days=5,
        purge_outbox_done_after_days=5,
        purge_dlq_discarded_after_days=9,
    )

    await run(settings, db, storage=LocalStorage(tmp_path / "archive"))

    left = await _left(db)
    assert left["inbox"] == ["failed-old", "pending-old"]
    assert left["outbox"] == ["dead-waiting", "pending"]


async def test_purges_go_in_batches(db: Database, tmp_path: Path, monkeypatch: Any) -> None:
    from b24mw.retention import purge

    monkeypatch.setattr(purge, "BATCH", 2)
    now = utcnow()
    rows = [
        {"kind": "b24.call", "payload": {"name": str(i)}, "status": "done", "attempts": 1,
         "next_attempt_at": now, "error_history": [], "created_at": now, "updated_at": now,
         "finished_at": now - timedelta(days=8)}
        for i in range(7)
    ]  # fmt: skip
    async with db.unit_of_work() as session:
        await session.execute(insert(OUTBOX), rows)
    settings = retention_settings(db, tmp_path)

    report = await run(settings, db, storage=LocalStorage(tmp_path / "archive"))

    assert report is not None and report.purged["outbox"] == 7
    lines = [json.loads(x) for x in (tmp_path / "siem.jsonl").read_text().splitlines()]
    assert [x["rows"] for x in lines if x["table"] == "outbox"] == [2, 2, 2, 1]
