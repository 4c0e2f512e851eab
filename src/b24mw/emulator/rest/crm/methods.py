"""CRM REST methods: ``crm.item.*`` (deals and leads), the deprecated
``crm.deal.*``/``crm.lead.*``, stages and pipelines, timeline comments and
the CRM mode.  Sources: api-reference/crm/ of ``bitrix24/b24restdocs`` and
BITRIX24.md §6 (docs/emulator.md lists what is uncertain)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timezone
from typing import Any

from b24mw.emulator.rest.crm.catalog import CATALOG_METHODS
from b24mw.emulator.rest.crm.service import not_found
from b24mw.emulator.rest.crm.views import (
    camel_fields,
    item_view,
    select_view,
    upper_fields,
    upper_view,
)
from b24mw.emulator.rest.methodkit import (
    PAGE_SIZE,
    Args,
    Handler,
    MethodContext,
    MethodResult,
    named,
)
from b24mw.emulator.rest.tasks.service import as_int
from b24mw.emulator.state.crm import DEAL, ENTITY_NAMES, LEAD, CrmItem
from b24mw.emulator.wire import dates
from b24mw.emulator.wire.errors import B24Error

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


CRM_METHODS: dict[str, Handler] = {
    "crm.item.add": item_add,
    "crm.item.get": item_get,
    "crm.item.update": item_update,
    "crm.item.delete": item_delete,
    "crm.item.list": item_list,
    **_upper_methods(DEAL),
    **_upper_methods(LEAD),
    **CATALOG_METHODS,
}
