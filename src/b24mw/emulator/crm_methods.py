"""CRM REST methods: ``crm.item.*`` (deals and leads), the deprecated
``crm.deal.*``/``crm.lead.*``, stages and pipelines, timeline comments and
the CRM mode.  Sources: api-reference/crm/ of ``bitrix24/b24restdocs`` and
BITRIX24.md §6 (docs/emulator.md lists what is uncertain)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timezone
from typing import Any

from b24mw.emulator import dates
from b24mw.emulator.crm import not_found
from b24mw.emulator.crm_state import DEAL, ENTITY_NAMES, LEAD, CrmItem
from b24mw.emulator.crm_views import (
    camel_fields,
    item_view,
    select_view,
    upper_fields,
    upper_view,
)
from b24mw.emulator.errors import B24Error
from b24mw.emulator.methodkit import PAGE_SIZE, Args, Handler, MethodContext, MethodResult, named
from b24mw.emulator.service import as_int

# Filter/order fields: name -> (kind, getter).  crm.item.* names them in
# camelCase, crm.deal.*/crm.lead.* in upper case.
Getter = Callable[[CrmItem], Any]
_COMMON: dict[str, tuple[str, str, Getter]] = {
    # canonical: (camel name, kind, getter)
    "ID": ("id", "int", lambda i: i.id),
    "TITLE": ("title", "str", lambda i: i.title),
    "STAGE_ID": ("stageId", "str", lambda i: i.stage_id),
    "CATEGORY_ID": ("categoryId", "int", lambda i: i.category_id),
    "ASSIGNED_BY_ID": ("assignedById", "int", lambda i: i.assigned_by_id),
    "OPPORTUNITY": ("opportunity", "float", lambda i: i.opportunity),
    "CURRENCY_ID": ("currencyId", "str", lambda i: i.currency_id),
    "LEAD_ID": ("leadId", "int", lambda i: i.lead_id),
    "CONTACT_ID": ("contactId", "int", lambda i: i.contact_id),
    "COMPANY_ID": ("companyId", "int", lambda i: i.company_id),
    "DATE_CREATE": ("createdTime", "date", lambda i: i.created_time),
    "DATE_MODIFY": ("updatedTime", "date", lambda i: i.updated_time),
    "MOVED_TIME": ("movedTime", "date", lambda i: i.moved_time),
}
_PREFIXES = ("!@", "!=%", "!%=", "!%", "!=", ">=", "<=", "=%", "%=", "@", ">", "<", "!", "%", "=")


def _fields_by(upper: bool, entity_type_id: int) -> dict[str, tuple[str, Getter]]:
    out: dict[str, tuple[str, Getter]] = {}
    for canonical, (camel, kind, getter) in _COMMON.items():
        name = canonical
        if entity_type_id == LEAD and canonical == "STAGE_ID":
            name = "STATUS_ID"
        out[name if upper else camel] = (kind, getter)
    return out


def _convert(kind: str, value: Any, tz: timezone) -> Any:
    if kind == "int":
        return as_int(value)
    if kind == "float":
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    if kind == "date":
        return dates.parse(value, tz)
    return None if value is None else str(value).casefold()


def _test(op: str, kind: str, actual: Any, raw: Any, tz: timezone) -> bool:
    values = raw if isinstance(raw, list) else [raw]
    expected = [_convert(kind, v, tz) for v in values]
    if kind == "str" and actual is not None:
        actual = str(actual).casefold()
    if op in ("%", "!%", "=%", "%=", "!=%", "!%="):
        hit = any(isinstance(e, str) and e.strip("%") in (actual or "") for e in expected)
        return hit if not op.startswith("!") else not hit
    if op in ("", "=", "@"):
        return any(actual == e for e in expected)
    if op in ("!", "!=", "!@"):
        return all(actual != e for e in expected)
    if actual is None:
        return False
    compare = {
        ">": lambda a, e: a > e,
        ">=": lambda a, e: a >= e,
        "<": lambda a, e: a < e,
        "<=": lambda a, e: a <= e,
    }[op]
    return any(e is not None and compare(actual, e) for e in expected)


def _filter(
    items: list[CrmItem], spec: Any, fields: dict[str, tuple[str, Getter]], tz: timezone
) -> list[CrmItem]:
    if not isinstance(spec, Mapping):
        return items
    conditions = []
    for key, value in spec.items():
        text = str(key)
        op = next((p for p in _PREFIXES if text.startswith(p)), "")
        field = fields.get(text[len(op) :])
        if field is not None:  # unknown filter fields are ignored (UNCONFIRMED)
            conditions.append((op, field[0], field[1], value))
    return [i for i in items if all(_test(op, k, get(i), v, tz) for op, k, get, v in conditions)]


def _order(items: list[CrmItem], spec: Any, fields: dict[str, tuple[str, Getter]]) -> list[CrmItem]:
    result = sorted(items, key=lambda i: i.id)
    if not isinstance(spec, Mapping):
        return result
    for key, direction in reversed(list(spec.items())):
        field = fields.get(str(key))
        if field is None:
            continue
        getter = field[1]
        result.sort(
            key=lambda i, g=getter: (0, 0) if g(i) is None else (1, g(i)),  # type: ignore[misc]
            reverse=str(direction).upper() == "DESC",
        )
    return result


def _page(items: list[Any], start_raw: Any) -> tuple[list[Any], int | None, int | None]:
    """(page, next, total); ``start=-1`` skips the count: no total, no next."""
    start = as_int(start_raw) or 0
    if start == -1:
        return items[:PAGE_SIZE], None, None
    start = max(start, 0)
    end = start + PAGE_SIZE
    return items[start:end], (end if end < len(items) else None), len(items)


def _select(raw: Any) -> list[str] | None:
    if isinstance(raw, Mapping):
        raw = list(raw.values())
    if isinstance(raw, list):
        return [str(s) for s in raw]
    return None


# -- crm.item.* ----------------------------------------------------------


def _entity_type(params: dict[str, Any]) -> int:
    value = as_int(params.get("entitytypeid"))
    if value not in (DEAL, LEAD):
        raise B24Error("NOT_FOUND", "Smart process not found", 400)
    return value


def _item_id(params: dict[str, Any]) -> int:
    value = as_int(params.get("id"))
    if value is None or value <= 0:
        raise not_found()
    return value


def _item_fields(params: dict[str, Any], entity_type_id: int) -> dict[str, Any]:
    fields = params.get("fields")
    if not isinstance(fields, Mapping):
        raise B24Error("INVALID_ARG_VALUE", "Parameter 'fields' must be array", 400)
    return camel_fields(dict(fields), entity_type_id)


def _render(ctx: MethodContext, item: CrmItem) -> dict[str, Any]:
    return item_view(item, ctx.crm.semantics(item), ctx.tz)


def item_add(ctx: MethodContext, args: Args) -> MethodResult:
    params = named(args)
    entity_type_id = _entity_type(params)
    fields = _item_fields(params, entity_type_id)
    # crm.item.add may set a deal's lead (crm.deal.add may not).
    raw = params.get("fields") or {}
    if entity_type_id == DEAL and isinstance(raw, Mapping) and "leadId" in raw:
        fields["LEAD_ID"] = raw["leadId"]
    item = ctx.crm.add(entity_type_id, fields, ctx.actor)
    return MethodResult({"item": _render(ctx, item)})


def item_get(ctx: MethodContext, args: Args) -> MethodResult:
    params = named(args)
    entity_type_id = _entity_type(params)
    item = ctx.crm.get(entity_type_id, _item_id(params))
    if item is None:
        raise not_found()
    return MethodResult({"item": _render(ctx, item)})


def item_update(ctx: MethodContext, args: Args) -> MethodResult:
    params = named(args)
    entity_type_id = _entity_type(params)
    item_id = _item_id(params)
    item = ctx.crm.update(entity_type_id, item_id, _item_fields(params, entity_type_id), ctx.actor)
    return MethodResult({"item": _render(ctx, item)})


def item_delete(ctx: MethodContext, args: Args) -> MethodResult:
    params = named(args)
    ctx.crm.delete(_entity_type(params), _item_id(params))
    return MethodResult([])


def item_list(ctx: MethodContext, args: Args) -> MethodResult:
    params = named(args)
    entity_type_id = _entity_type(params)
    fields = _fields_by(False, entity_type_id)
    items = _filter(ctx.crm.all(entity_type_id), params.get("filter"), fields, ctx.tz)
    items = _order(items, params.get("order"), fields)
    chunk, next_start, total = _page(items, params.get("start"))
    select = _select(params.get("select"))
    rendered = [select_view(_render(ctx, i), select, id_key="id", upper=False) for i in chunk]
    return MethodResult({"items": rendered}, total=total, next=next_start)


# -- crm.deal.* / crm.lead.* -----------------------------------------------


def _upper_id(params: dict[str, Any]) -> int:
    value = as_int(params.get("id"))
    if value is None or value <= 0:
        raise B24Error("", "ID is not defined or invalid.", 400)
    return value


def _upper_methods(entity_type_id: int) -> dict[str, Handler]:
    name = ENTITY_NAMES[entity_type_id]
    fields = _fields_by(True, entity_type_id)

    def render(ctx: MethodContext, item: CrmItem) -> dict[str, Any]:
        return upper_view(item, ctx.crm.semantics(item), ctx.tz)

    def raw_fields(params: dict[str, Any]) -> dict[str, Any]:
        raw = params.get("fields")
        if not isinstance(raw, Mapping):
            raise B24Error("", "Parameter 'fields' must be array.", 400)
        return upper_fields(dict(raw))

    def add(ctx: MethodContext, args: Args) -> MethodResult:
        params = named(args)
        return MethodResult(ctx.crm.add(entity_type_id, raw_fields(params), ctx.actor).id)

    def get(ctx: MethodContext, args: Args) -> MethodResult:
        item = ctx.crm.get(entity_type_id, _upper_id(named(args)))
        if item is None:
            raise B24Error("", "Not found", 400)
        return MethodResult(render(ctx, item))

    def update(ctx: MethodContext, args: Args) -> MethodResult:
        params = named(args)
        item_id = _upper_id(params)
        if ctx.crm.get(entity_type_id, item_id) is None:
            raise B24Error("", "Not found", 400)
        ctx.crm.update(entity_type_id, item_id, raw_fields(params), ctx.actor)
        return MethodResult(True)

    def delete(ctx: MethodContext, args: Args) -> MethodResult:
        item_id = _upper_id(named(args))
        if ctx.crm.get(entity_type_id, item_id) is None:
            raise B24Error("", "Not found", 400)
        ctx.crm.delete(entity_type_id, item_id)
        return MethodResult(True)

    def listing(ctx: MethodContext, args: Args) -> MethodResult:
        params = named(args)
        items = _filter(ctx.crm.all(entity_type_id), params.get("filter"), fields, ctx.tz)
        items = _order(items, params.get("order"), fields)
        chunk, next_start, total = _page(items, params.get("start"))
        select = _select(params.get("select"))
        rendered = [select_view(render(ctx, i), select, id_key="ID", upper=True) for i in chunk]
        return MethodResult(rendered, total=total, next=next_start)

    return {
        f"crm.{name}.add": add,
        f"crm.{name}.get": get,
        f"crm.{name}.update": update,
        f"crm.{name}.delete": delete,
        f"crm.{name}.list": listing,
    }


# -- stages, pipelines, timeline, mode -----------------------------------


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
    flt = params.get("filter")
    flt = {str(k).upper(): v for k, v in flt.items()} if isinstance(flt, Mapping) else {}
    wanted = flt.get("ENTITY_ID")
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
    flt = params.get("filter")
    flt = {str(k).upper(): v for k, v in flt.items()} if isinstance(flt, Mapping) else {}
    entity_type, entity_id = _timeline_owner(flt)
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


CRM_METHODS: dict[str, Handler] = {
    "crm.item.add": item_add,
    "crm.item.get": item_get,
    "crm.item.update": item_update,
    "crm.item.delete": item_delete,
    "crm.item.list": item_list,
    **_upper_methods(DEAL),
    **_upper_methods(LEAD),
    "crm.status.entity.types": status_entity_types,
    "crm.status.list": status_list,
    "crm.category.list": category_list,
    "crm.timeline.comment.add": timeline_comment_add,
    "crm.timeline.comment.list": timeline_comment_list,
    "crm.settings.mode.get": settings_mode_get,
}
