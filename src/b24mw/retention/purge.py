"""Purges of the daily run (issue 14, part 6): rows that only served a window
that has passed.  Each window is a setting:

- ``idempotency_key`` rows past their ``expires_at`` (``B24MW_IDEMPOTENCY_TTL_HOURS``);
- ``webhook_inbox`` rows processed (done or rejected) longer ago than the dedupe
  window ``B24MW_PURGE_INBOX_AFTER_DAYS``; failed rows wait for an operator;
- outbox jobs delivered longer ago than ``B24MW_PURGE_OUTBOX_DONE_AFTER_DAYS``;
- dead letters discarded longer ago than ``B24MW_PURGE_DLQ_DISCARDED_AFTER_DAYS``
  (a dead letter nobody discarded stays).

Batches of ids with one short transaction each, and a SIEM line per delete.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement

from b24mw.kit.db import Database
from b24mw.retention import metrics
from b24mw.retention.purge_repository import (
    INBOX,
    OUTBOX,
    PurgeRepository,
    dead_letters_discarded,
    inbox_processed,
    outbox_finished,
)
from b24mw.settings import Settings
from b24mw.siem import SiemStream

BATCH = 5_000


async def purge_expired(
    db: Database, settings: Settings, now: datetime, audit: SiemStream | None, actor: str
) -> dict[str, int]:
    def days(n: int) -> datetime:
        return now - timedelta(days=n)

    def emit(table: str, rows: int, reason: str, first: int | None, last: int | None) -> None:
        metrics.PURGED_ROWS.labels(table).inc(rows)
        if audit is not None and rows:
            fields: dict[str, object] = {"table": table, "rows": rows, "reason": reason}
            if first is not None:
                fields.update(first_id=first, last_id=last)
            audit.emit_record("retention_delete", {**fields, "actor": actor})

    keys = 0
    while True:
        async with db.unit_of_work() as session:
            deleted = await PurgeRepository(session).expired_keys(now, BATCH)
        emit("idempotency_key", deleted, "expired", None, None)
        keys += deleted
        if deleted < BATCH:
            break
    purged = {"idempotency_key": keys}
    by_id: list[tuple[str, str, Callable[[datetime], ColumnElement[bool]], int]] = [
        ("webhook_inbox", "processed", inbox_processed, settings.purge_inbox_after_days),
        ("outbox", "finished", outbox_finished, settings.purge_outbox_done_after_days),
        (
            "outbox_dlq",
            "discarded",
            dead_letters_discarded,
            settings.purge_dlq_discarded_after_days,
        ),
    ]
    for label, reason, condition, window in by_id:
        table = INBOX if label == "webhook_inbox" else OUTBOX
        cond = condition(days(window))
        total, after = 0, 0
        while True:
            async with db.unit_of_work() as session:
                repo = PurgeRepository(session)
                ids = await repo.ids_after(table, cond, after, BATCH)
                deleted = await repo.delete_ids(table, cond, ids) if ids else 0
            if not ids:
                break
            emit(table.name, deleted, f"{reason} over {window} days ago", ids[0], ids[-1])
            total += deleted
            after = ids[-1]
        purged[label] = total
    return purged
