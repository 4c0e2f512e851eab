"""Schedulers of the CRM mirror: reconciliation and the pipeline cache.

Reconciliation: a lost ``ONCRM*`` event must not lose a change, so every
``B24MW_CRM_RECONCILE_INTERVAL_S`` (across all workers: the cursor row says
when any ran) the worker scans deals and leads modified since its cursor
minus an overlap.  The scan is stable: ordered by id, paged by ``>id`` with
``start=-1`` (no count, no offsets over a moving order), within one
modified-time window fixed for the whole scan; every read goes through the
same newer-only upsert as events, so re-reading an item costs nothing.

Pipelines: ``crm.status.entity.types`` names each deal pipeline's final
success and failure stage, ``crm.status.list`` every stage's semantics; both
are cached in ``crm_pipelines`` for ``B24MW_CRM_PIPELINES_TTL_S``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import structlog

from b24mw.bitrix24.errors import Bitrix24Error
from b24mw.crm import sync
from b24mw.crm.flows import store_read
from b24mw.crm.repository import CrmRepository
from b24mw.kit.request_context import new_request_id, set_request_id
from b24mw.models.base import utcnow
from b24mw.outbox.schedulers import WorkerContext
from b24mw.webhooks.events import as_int
from b24mw.webhooks.processor import self_user_id
from b24mw.webhooks.repository import WebhookRepository

log = structlog.get_logger("b24mw.crm")

CURSORS = {sync.DEAL: "b24.crm.deals.modified", sync.LEAD: "b24.crm.leads.modified"}
RUN_CURSOR = "b24.crm.reconcile"
PIPELINES_CURSOR = "b24.crm.pipelines"
# updatedTime has whole seconds and a save may commit after a later one:
# every scan re-reads the last few minutes.
OVERLAP = timedelta(minutes=5)
FIRST_LOOKBACK = timedelta(days=30)
MAX_PAGES = 40
PAGE = 50


async def _due(ctx: WorkerContext, cursor: str, interval_s: float) -> bool:
    if not ctx.settings.crm_sync or ctx.b24 is None or not await ctx.b24.ready():
        return False
    async with ctx.db.reader() as session:
        last = await WebhookRepository(session).cursor_updated_at(cursor)
    return last is None or utcnow() - last >= timedelta(seconds=interval_s)


async def reconcile_when_due(ctx: WorkerContext) -> int:
    if not await _due(ctx, RUN_CURSOR, ctx.settings.crm_reconcile_interval_s):
        return 0
    try:
        return await reconcile(ctx)
    except Bitrix24Error as exc:
        # Refused for good (no crm scope...): say so once per interval, not
        # every round, and try again at the next one.
        log.warning("crm_reconcile_refused", code=exc.error.code, error=exc.error.text)
        async with ctx.db.unit_of_work() as session:
            await WebhookRepository(session).set_cursor(RUN_CURSOR, "refused", utcnow())
        return 0


async def reconcile(ctx: WorkerContext) -> int:
    """One scan of deals, then leads (unless Simple CRM); the items stored."""
    if ctx.b24 is None:
        return 0
    set_request_id(new_request_id())
    try:
        mode = await ctx.b24.call("crm.settings.mode.get", {}, resource_ref="crm.reconcile")
        types = [sync.DEAL] if mode.result == 2 else [sync.DEAL, sync.LEAD]
        stored = 0
        for entity_type_id in types:
            stored += await _scan(ctx, entity_type_id)
        async with ctx.db.unit_of_work() as session:
            await WebhookRepository(session).set_cursor(RUN_CURSOR, utcnow().isoformat(), utcnow())
        return stored
    finally:
        set_request_id(None)


async def _scan(ctx: WorkerContext, entity_type_id: int) -> int:
    assert ctx.b24 is not None
    name = CURSORS[entity_type_id]
    async with ctx.db.reader() as session:
        stored_cursor = await WebhookRepository(session).cursor(name)
    newest = sync.parse_time(stored_cursor) or utcnow() - FIRST_LOOKBACK
    since = (newest - OVERLAP).isoformat(timespec="seconds")
    me = self_user_id(ctx.settings, ctx.b24)
    after_id = 0
    stored = 0
    for _ in range(MAX_PAGES):
        reply = await ctx.b24.call(
            "crm.item.list",
            {
                "entityTypeId": entity_type_id,
                "select": ["*"],
                "filter": {">=updatedTime": since, ">id": after_id},
                "order": {"id": "ASC"},
                "start": -1,
            },
            resource_ref="crm.reconcile",
        )
        items = reply.result.get("items") if isinstance(reply.result, dict) else None
        page = [i for i in items or [] if isinstance(i, dict)]
        async with ctx.db.unit_of_work() as session:
            for item in page:
                result = await store_read(session, entity_type_id, item, me)
                if not result.errors:
                    stored += 1
                updated = sync.parse_time(item.get("updatedTime"))
                if updated is not None:
                    newest = max(newest, updated)
            await WebhookRepository(session).set_cursor(name, newest.isoformat(), utcnow())
        ids = [i for item in page if (i := as_int(item.get("id")))]
        if len(page) < PAGE or not ids:
            break
        after_id = max(ids)
    return stored


# ------------------------------------------------------------------ pipelines


async def refresh_pipelines_when_due(ctx: WorkerContext) -> int:
    if not await _due(ctx, PIPELINES_CURSOR, ctx.settings.crm_pipelines_ttl_s):
        return 0
    try:
        await refresh_pipelines(ctx)
    except Bitrix24Error as exc:
        # Refused for good (no crm scope...): say so, and try again next TTL.
        log.warning("crm_pipelines_refused", code=exc.error.code)
        async with ctx.db.unit_of_work() as session:
            await WebhookRepository(session).set_cursor(PIPELINES_CURSOR, "refused", utcnow())
        return 0
    return 0


def pipeline_rows(types: Any, stages: Any, now: datetime) -> list[dict[str, Any]]:
    """One row per deal pipeline of ``crm.status.entity.types``, with its
    stages (and their semantics) from ``crm.status.list``."""
    by_entity: dict[str, list[dict[str, Any]]] = {}
    for stage in stages if isinstance(stages, list) else []:
        if isinstance(stage, dict) and isinstance(stage.get("ENTITY_ID"), str):
            raw_extra = stage.get("EXTRA")
            extra: dict[str, Any] = raw_extra if isinstance(raw_extra, dict) else {}
            semantics = stage.get("SEMANTICS") or {"success": "S", "failure": "F"}.get(
                str(extra.get("SEMANTICS")), "P"
            )
            by_entity.setdefault(stage["ENTITY_ID"], []).append(
                {"id": stage.get("STATUS_ID"), "name": stage.get("NAME"), "semantics": semantics}
            )
    rows = []
    for entry in types if isinstance(types, list) else []:
        if not isinstance(entry, dict) or entry.get("ENTITY_TYPE_ID") not in (2, "2"):
            continue
        info = entry.get("SEMANTIC_INFO")
        category = as_int(entry.get("CATEGORY_ID")) or 0
        if not isinstance(info, dict) or not info.get("FINAL_SUCCESS_FIELD"):
            continue
        rows.append(
            {
                "category_id": category,
                "name": str(entry.get("NAME") or "")[:255],
                "success_stage_id": str(info["FINAL_SUCCESS_FIELD"]),
                "failure_stage_id": str(info.get("FINAL_UNSUCCESS_FIELD") or ""),
                "stages": by_entity.get(str(entry.get("ID")), []),
                "read_at": now,
            }
        )
    return rows


async def refresh_pipelines(ctx: WorkerContext) -> int:
    if ctx.b24 is None:
        return 0
    set_request_id(new_request_id())
    try:
        answers = await ctx.b24.batch(
            {"types": ("crm.status.entity.types", {}), "stages": ("crm.status.list", {})}
        )
    finally:
        set_request_id(None)
    for item in answers.values():
        if item.error is not None:
            raise Bitrix24Error(item.error, item.method)
    rows = pipeline_rows(answers["types"].result, answers["stages"].result, utcnow())
    async with ctx.db.unit_of_work() as session:
        repo = CrmRepository(session)
        for row in rows:
            await repo.put_pipeline(row)
        await WebhookRepository(session).set_cursor(PIPELINES_CURSOR, "ok", utcnow())
    return len(rows)
