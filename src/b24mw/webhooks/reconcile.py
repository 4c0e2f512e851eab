"""Reconciliation: Bitrix24 never re-sends a lost event (BITRIX24.md §1), so
the worker looks for tasks changed since its last look and feeds the ones
processing has not seen into the inbox, where they take the same path as a
delivered ``ONTASKUPDATE``.  Two scans:

- tasks tagged ``instant_order`` (new orders), paged by a stable key:
  ``>CHANGED_DATE`` fixed for the whole scan, ordered by ``ID``, the next
  page ``>ID`` the last one seen, ``start=-1`` (no count).  Offset paging
  over a moving order skips rows: a task changed while the scan pages moves,
  and every row after it shifts.  A scan cut short (``MAX_PAGES``) goes on
  from where it stopped next time;
- tasks behind orders and deliveries that are not final, whether tagged or
  not (a delivery's task never is): by their ids, 50 a command, up to 50
  commands a request, so a lost status change or comment on a delivery's
  task is recovered too.

"Seen" means an inbox row for the task is still waiting (it will read the
task), or processing last read the task after this change: at a later
``CHANGED_DATE``, or at the same one by a read the portal ran in a later
second.  ``CHANGED_DATE`` has whole seconds, so a read inside that second
does not prove that nothing changed later in it (two changes 0.6 s apart
show one date): such a task is read once more.  Each scan starts a minute
before the newest change the last one saw, so a task changed while it ran
is not missed; the seen check keeps the overlap (and every event that did
arrive) from costing a second read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from b24mw.bitrix24.errors import Bitrix24Unavailable
from b24mw.kit.request_context import new_request_id, set_request_id
from b24mw.models.base import utcnow
from b24mw.models.enums import InboxStatus
from b24mw.outbox.schedulers import WorkerContext
from b24mw.webhooks.events import as_int
from b24mw.webhooks.repository import WebhookRepository

CURSOR = "b24.tasks.changed"
LINKED_CURSOR = "b24.tasks.linked.changed"
OVERLAP = timedelta(seconds=60)
FIRST_LOOKBACK = timedelta(days=1)
MAX_PAGES = 20
PAGE = 50  # tasks.task.list's fixed page size
BATCH = 50  # commands in one batch request
SELECT = ["ID", "CHANGED_DATE"]


def parse_b24_date(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


@dataclass(slots=True)
class ScanState:
    """Where the tagged scan stands: the newest change finished scans saw,
    and a scan in progress (its fixed lower bound and the last id reached)."""

    newest: datetime
    since: datetime | None = None
    after_id: int = 0
    scan_newest: datetime | None = None

    @classmethod
    def load(cls, stored: str | None, now: datetime) -> ScanState:
        fallback = now - FIRST_LOOKBACK
        if not stored:
            return cls(fallback)
        try:
            data = json.loads(stored)
        except ValueError:
            # Before keyset paging the cursor was the newest CHANGED_DATE alone.
            return cls(parse_b24_date(stored) or fallback)
        if not isinstance(data, dict):
            return cls(fallback)
        after = as_int(data.get("after_id"))
        return cls(
            newest=parse_b24_date(data.get("newest")) or fallback,
            since=parse_b24_date(data.get("since")),
            after_id=after if after is not None and after > 0 else 0,
            scan_newest=parse_b24_date(data.get("scan_newest")),
        )

    def dump(self) -> str:
        data: dict[str, Any] = {"newest": _iso(self.newest)}
        if self.since is not None:
            data["since"] = _iso(self.since)
            data["after_id"] = self.after_id
            data["scan_newest"] = _iso(self.scan_newest or self.newest)
        return json.dumps(data, separators=(",", ":"))


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
    """One run of both scans; the number of tasks fed into the inbox."""
    if ctx.b24 is None:
        return 0
    run = new_request_id()
    set_request_id(run)
    try:
        return await _tagged(ctx, run) + await _linked(ctx, run)
    finally:
        set_request_id(None)


async def _tagged(ctx: WorkerContext, run: str) -> int:
    assert ctx.b24 is not None
    now = utcnow()
    async with ctx.db.reader() as session:
        state = ScanState.load(await WebhookRepository(session).cursor(CURSOR), now)
    if state.since is None:
        state.since, state.after_id, state.scan_newest = state.newest - OVERLAP, 0, state.newest
    fed = 0
    for _ in range(MAX_PAGES):
        reply = await ctx.b24.call(
            "tasks.task.list",
            {
                "filter": {
                    "TAG": ctx.settings.webhook_order_tag,
                    ">CHANGED_DATE": _iso(state.since),
                    ">ID": state.after_id,
                },
                "select": SELECT,
                "order": {"ID": "asc"},
                "start": -1,
            },
            resource_ref="reconcile",
        )
        tasks = _tasks(reply.result)
        async with ctx.db.unit_of_work() as session:
            repo = WebhookRepository(session)
            for task_id, changed, raw in tasks:
                state.after_id = max(state.after_id, task_id)
                state.scan_newest = max(state.scan_newest or changed, changed)
                if not await _seen(repo, task_id, changed):
                    fed += await _feed(repo, task_id, raw, now, run)
            if len(tasks) < PAGE:
                # The scan is complete: the next one starts from its newest change.
                state = ScanState(state.scan_newest or state.newest)
            await repo.set_cursor(CURSOR, state.dump(), utcnow())
        if state.since is None:
            break
    return fed


async def _linked(ctx: WorkerContext, run: str) -> int:
    """Tasks behind open orders and deliveries changed since the last look."""
    assert ctx.b24 is not None
    now = utcnow()
    async with ctx.db.reader() as session:
        stored = await WebhookRepository(session).cursor(LINKED_CURSOR)
    newest = parse_b24_date(stored) or now - FIRST_LOOKBACK
    since = _iso(newest - OVERLAP)
    fed, after = 0, 0
    while True:
        async with ctx.db.reader() as session:
            ids = await WebhookRepository(session).open_task_ids(after, PAGE * BATCH)
        if not ids:
            break
        chunks = [ids[i : i + PAGE] for i in range(0, len(ids), PAGE)]
        commands = {
            f"l{n}": (
                "tasks.task.list",
                {
                    "filter": {"ID": chunk, ">CHANGED_DATE": since},
                    "select": SELECT,
                    "order": {"ID": "asc"},
                    "start": -1,
                },
            )
            for n, chunk in enumerate(chunks)
        }
        answers = await ctx.b24.batch(commands)
        failed = next((a.error for a in answers.values() if a.error is not None), None)
        if failed is not None:
            # The cursor stays: the next run looks at these tasks again.
            raise Bitrix24Unavailable(failed, "tasks.task.list")
        async with ctx.db.unit_of_work() as session:
            repo = WebhookRepository(session)
            for answer in answers.values():
                for task_id, changed, raw in _tasks(answer.result):
                    newest = max(newest, changed)
                    if not await _seen(repo, task_id, changed):
                        fed += await _feed(repo, task_id, raw, now, run)
        after = ids[-1]
        if len(ids) < PAGE * BATCH:
            break
    async with ctx.db.unit_of_work() as session:
        await WebhookRepository(session).set_cursor(LINKED_CURSOR, _iso(newest), utcnow())
    return fed


def _tasks(result: Any) -> list[tuple[int, datetime, str]]:
    """(id, CHANGED_DATE, the date as the portal wrote it) of a list answer."""
    tasks = result.get("tasks") if isinstance(result, dict) else None
    found = []
    for task in tasks if isinstance(tasks, list) else []:
        task_id = as_int(task.get("id")) if isinstance(task, dict) else None
        raw = task.get("changedDate") if isinstance(task, dict) else None
        changed = parse_b24_date(raw)
        if task_id is not None and changed is not None and isinstance(raw, str):
            found.append((task_id, changed, raw))
    return found


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
            "status": InboxStatus.PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "errors": [],
            "request_id": new_request_id(),
            "source_ip": None,
            "received_at": now,
        }
    )
    return 1 if inserted is not None else 0
