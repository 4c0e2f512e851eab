"""CRM methods around the items: stages and pipelines (``crm.status.*``,
``crm.category.list``), timeline comments and the CRM mode.  Sources as in
``rest/crm/methods.py``; docs/emulator.md lists what is uncertain."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from b24mw.emulator.rest.methodkit import (
    PAGE_SIZE,
    Args,
    Handler,
    MethodContext,
    MethodResult,
    named,
)
from b24mw.emulator.rest.tasks.service import as_int
from b24mw.emulator.state.crm import DEAL, ENTITY_NAMES, LEAD
from b24mw.emulator.wire import dates
from b24mw.emulator.wire.errors import B24Error


def _page(items: list[Any], start_raw: Any) -> tuple[list[Any], int | None, int | None]:
    start = max(as_int(start_raw) or 0, 0)
    end = start + PAGE_SIZE
    return items[start:end], (end if end < len(items) else None), len(items)


def status_entity_types(ctx: MethodContext, args: Args) -> MethodResult:
    leads = ctx.crm.lead_statuses()
    result: list[dict[str, Any]] = []
    if ctx.crm.leads_enabled:
        result.append(_semantic_info("STATUS", "Lead stages", leads, LEAD, None))
    result += [{"ID": "SOURCE", "NAME": "Sources"}, {"ID": "DEAL_TYPE", "NAME": "Deal type"}]
    for pipeline in sorted(ctx.crm.pipelines().values(), key=lambda p: p.id):
        entry = _semantic_info(
            pipeline.entity_id, f"{pipeline.name} deal stages", pipeline, DEAL, pipeline.id
        )
        if pipeline.id:
            entry.update(PARENT_ID="DEAL_STAGE", PREFIX=f"C{pipeline.id}")
            entry["CATEGORY_ID"] = str(pipeline.id)
        result.append(entry)
    return MethodResult(result)


def _semantic_info(
    entity_id: str, name: str, pipeline: Any, entity_type_id: int, category_id: int | None
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "ID": entity_id,
        "NAME": name,
        "SEMANTIC_INFO": {
            "START_FIELD": pipeline.stages[0].status_id,
            "FINAL_SUCCESS_FIELD": pipeline.first("S").status_id,
            "FINAL_UNSUCCESS_FIELD": pipeline.first("F").status_id,
            "FINAL_SORT": 0,
        },
        "ENTITY_TYPE_ID": entity_type_id,
    }
    if category_id is not None:
        entry["FIELD_ATTRIBUTE_SCOPE"] = f"category_{category_id}" if category_id else ""
        entry["CATEGORY_ID"] = category_id
    return entry


_SEMANTICS_NAME = {"P": "process", "S": "success", "F": "failure"}


def status_list(ctx: MethodContext, args: Args) -> MethodResult:
    params = named(args)
    filters = params.get("filter")
    filters = (
        {str(k).upper(): v for k, v in filters.items()} if isinstance(filters, Mapping) else {}
    )
    wanted = filters.get("ENTITY_ID")
    groups: list[tuple[str, Any, int | None]] = []
    if ctx.crm.leads_enabled:
        groups.append(("STATUS", ctx.crm.lead_statuses(), None))
    groups += [(p.entity_id, p, p.id) for p in ctx.crm.pipelines().values()]
    rows: list[dict[str, Any]] = []
    for entity_id, pipeline, category_id in groups:
        if wanted is not None and str(wanted).upper() != entity_id:
            continue
        for stage in pipeline.stages:
            rows.append(
                {
                    "ID": str(len(rows) + 101),
                    "ENTITY_ID": entity_id,
                    "STATUS_ID": stage.status_id,
                    "NAME": stage.name,
                    "NAME_INIT": stage.name,
                    "SORT": str(stage.sort),
                    "SYSTEM": "Y" if stage.semantics != "P" or stage.sort == 10 else "N",
                    "CATEGORY_ID": str(category_id) if category_id else None,
                    "COLOR": "#39A8EF",
                    "SEMANTICS": None if stage.semantics == "P" else stage.semantics,
                    "EXTRA": {"SEMANTICS": _SEMANTICS_NAME[stage.semantics], "COLOR": "#39A8EF"},
                }
            )
    return MethodResult(rows)


def category_list(ctx: MethodContext, args: Args) -> MethodResult:
    entity_type_id = as_int(named(args).get("entitytypeid"))
    if entity_type_id == LEAD:
        raise B24Error("ENTITY_TYPE_NOT_SUPPORTED", "Entity type `LEAD` is not supported", 400)
    if entity_type_id != DEAL:
        raise B24Error("NOT_FOUND", "Smart process not found", 400)
    categories = [
        {
            "id": p.id,
            "name": p.name,
            "sort": p.sort,
            "entityTypeId": DEAL,
            "isDefault": "Y" if p.id == 0 else "N",
        }
        for p in sorted(ctx.crm.pipelines().values(), key=lambda p: (p.id == 0, p.id))
    ]
    return MethodResult({"categories": categories}, total=len(categories))


_TIMELINE_TYPES = {"deal": DEAL, "lead": LEAD}


def _timeline_owner(fields: Mapping[str, Any]) -> tuple[int, int]:
    entity_type = _TIMELINE_TYPES.get(str(fields.get("ENTITY_TYPE", "")).lower())
    entity_id = as_int(fields.get("ENTITY_ID"))
    if entity_type is None or entity_id is None or entity_id <= 0:
        raise B24Error("100", "Required fields are not provided", 400)
    return entity_type, entity_id


def timeline_comment_add(ctx: MethodContext, args: Args) -> MethodResult:
    # Since crm 23.100 only the lowercase key `fields` is accepted.
    fields = args.get("fields") if isinstance(args, dict) else None
    if not isinstance(fields, Mapping):
        raise B24Error("100", "Required fields are not provided", 400)
    entity_type, entity_id = _timeline_owner(fields)
    text = fields.get("COMMENT")
    comment = ctx.crm.add_comment(entity_type, entity_id, str(text or ""), ctx.actor)
    return MethodResult(comment.id)


_TIMELINE_ORDER: dict[str, Callable[[Any], Any]] = {
    "ID": lambda c: c.id,
    "CREATED": lambda c: c.created,
    "AUTHOR_ID": lambda c: c.author_id,
}


def timeline_comment_list(ctx: MethodContext, args: Args) -> MethodResult:
    params = named(args)
    filters = params.get("filter")
    filters = (
        {str(k).upper(): v for k, v in filters.items()} if isinstance(filters, Mapping) else {}
    )
    entity_type, entity_id = _timeline_owner(filters)
    # Sorting by ID, CREATED or AUTHOR_ID; none given: oldest first (UNCONFIRMED).
    comments = sorted(ctx.crm.crm.comments_of(entity_type, entity_id), key=lambda c: c.id)
    order = params.get("order")
    if isinstance(order, Mapping):
        for key, direction in reversed(list(order.items())):
            getter = _TIMELINE_ORDER.get(str(key).upper())
            if getter is not None:
                comments.sort(key=getter, reverse=str(direction).upper() == "DESC")
    chunk, next_start, total = _page(comments, params.get("start"))
    rows = [
        {
            "ID": str(c.id),
            "ENTITY_ID": c.entity_id,
            "ENTITY_TYPE": ENTITY_NAMES[c.entity_type_id],
            "CREATED": dates.iso(c.created, ctx.tz),
            "COMMENT": c.comment,
            "AUTHOR_ID": str(c.author_id),
        }
        for c in chunk
    ]
    return MethodResult(rows, total=total, next=next_start)


def settings_mode_get(ctx: MethodContext, args: Args) -> MethodResult:
    return MethodResult(ctx.crm.settings().crm_mode)


CATALOG_METHODS: dict[str, Handler] = {
    "crm.status.entity.types": status_entity_types,
    "crm.status.list": status_list,
    "crm.category.list": category_list,
    "crm.timeline.comment.add": timeline_comment_add,
    "crm.timeline.comment.list": timeline_comment_list,
    "crm.settings.mode.get": settings_mode_get,
}
