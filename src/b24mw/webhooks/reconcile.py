"""Reconciliation: Bitrix24 never re-sends a lost event (BITRIX24.md §1), so
the worker lists tasks tagged ``instant_order`` changed since its cursor and
feeds the ones processing has not seen into the inbox, where they take the
same path as a delivered ``ONTASKUPDATE``.

"Seen" means an inbox row for the task is still waiting (it will read the
task), or processing last read the task after this change: at a later
``CHANGED_DATE``, or at the same one by a read the portal ran in a later
second.  ``CHANGED_DATE`` has whole seconds, so a read inside that second
does not prove that nothing changed later in it (two changes 0.6 s apart
show one date): such a task is read once more.  The scan overlaps the
previous one by a minute, so a task changed while the last page was read is
not skipped; the seen check keeps the overlap (and every event that did
arrive) from costing a second read.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from b24mw.kit.request_context import new_request_id, set_request_id
from b24mw.models.base import utcnow
from b24mw.models.enums import InboxStatus
from b24mw.outbox.schedulers import WorkerContext, scheduler
from b24mw.webhooks.events import as_int
from b24mw.webhooks.repository import WebhookRepository

CURSOR = "b24.tasks.changed"
OVERLAP = timedelta(seconds=60)
FIRST_LOOKBACK = timedelta(days=1)
MAX_PAGES = 20


def parse_b24_date(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@scheduler("webhooks.reconcile", interval_s=5.0, drain=False)
async def reconcile_when_due(ctx: WorkerContext) -> int:
    """Every ``B24MW_WEBHOOK_RECONCILE_INTERVAL_S``, across all workers: the
    cursor row's ``updated_at`` says when any worker last ran it."""
    if ctx.b24 is None or not await ctx.b24.ready():
        return 0
    async with ctx.db.reader() as session:
        last = await WebhookRepository(session).cursor_updated_at(CURSOR)
    interval = timedelta(seconds=ctx.settings.webhook_reconcile_interval_s)
    if last is not None and utcnow() - last < interval:
        return 0
    return await reconcile(ctx)


async def reconcile(ctx: WorkerContext) -> int:
    """One scan; the number of tasks fed into the inbox."""
    if ctx.b24 is None:
        return 0
    now = utcnow()
    async with ctx.db.reader() as session:
        stored = await WebhookRepository(session).cursor(CURSOR)
    newest = parse_b24_date(stored) or now - FIRST_LOOKBACK
    since = newest - OVERLAP
    tag = ctx.settings.webhook_order_tag
    fed = 0
    start = 0
    run = new_request_id()
    set_request_id(run)
    try:
        for _ in range(MAX_PAGES):
            reply = await ctx.b24.call(
                "tasks.task.list",
                {
                    "filter": {"TAG": tag, ">CHANGED_DATE": since.isoformat(timespec="seconds")},
                    "select": ["ID", "CHANGED_DATE"],
                    "order": {"CHANGED_DATE": "asc", "ID": "asc"},
                    "start": start,
                },
                resource_ref="reconcile",
            )
            tasks = reply.result.get("tasks") if isinstance(reply.result, dict) else None
            async with ctx.db.unit_of_work() as session:
                repo = WebhookRepository(session)
                for task in tasks if isinstance(tasks, list) else []:
                    task_id = as_int(task.get("id")) if isinstance(task, dict) else None
                    changed = parse_b24_date(task.get("changedDate")) if task_id else None
                    if task_id is None or changed is None:
                        continue
                    newest = max(newest, changed)
                    if await _seen(repo, task_id, changed):
                        continue
                    fed += await _feed(repo, task_id, task["changedDate"], now, run)
                await repo.set_cursor(CURSOR, newest.isoformat(), utcnow())
            if reply.next is None:
                break
            start = reply.next
    finally:
        set_request_id(None)
    return fed


async def _seen(repo: WebhookRepository, task_id: int, changed: datetime) -> bool:
    if await repo.waiting(task_id):
        return True
    last = await repo.last_read(task_id)
    read = parse_b24_date(last.changed_date) if last is not None else None
    if last is None or read is None or read < changed:
        return False
    if read > changed:
        return True
    # The same CHANGED_DATE: proof only if the read ran after that second.
    second_over = changed.replace(microsecond=0) + timedelta(seconds=1)
    return last.portal_read_at is not None and last.portal_read_at >= second_over


async def _feed(
    repo: WebhookRepository, task_id: int, changed: str, now: datetime, run: str
) -> int:
    inserted = await repo.add_if_new(
        {
            # Per run: a task read inside its change's second is fed again by
            # the next scan, under the same CHANGED_DATE.
            "dedupe_key": f"recon:{task_id}:{changed}:{run}"[:160],
            "event": "ONTASKUPDATE",
            "task_id_b24": task_id,
            "payload": {
                "event": "ONTASKUPDATE",
                "data": {
                    "FIELDS_BEFORE": {"ID": str(task_id)},
                    "FIELDS_AFTER": {"ID": str(task_id)},
                },
                "b24mw_source": "reconciliation",
            },
            "status": InboxStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
            "errors": [],
            "request_id": new_request_id(),
            "source_ip": None,
            "received_at": now,
        }
    )
    return 1 if inserted is not None else 0
