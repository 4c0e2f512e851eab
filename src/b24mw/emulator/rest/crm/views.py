"""How deals and leads look on the wire: ``crm.item.*`` in camelCase with
numbers, ``crm.deal.*``/``crm.lead.*`` in UPPER_CASE with every value a string."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timezone
from typing import Any

from b24mw.emulator.state.crm import DEAL, LEAD, CrmItem
from b24mw.emulator.wire.dates import iso

# crm.item name -> canonical (crm.deal.*) name, for input.
_CAMEL_IN = {
    "title": "TITLE",
    "stageId": "STAGE_ID",
    "categoryId": "CATEGORY_ID",
    "opportunity": "OPPORTUNITY",
    "currencyId": "CURRENCY_ID",
    "assignedById": "ASSIGNED_BY_ID",
    "contactId": "CONTACT_ID",
    "companyId": "COMPANY_ID",
    "leadId": "LEAD_ID",
    "comments": "COMMENTS",
}
_UF_CAMEL = re.compile(r"^ufCrm_?(.+)$")
# Fields crm.deal.* / crm.lead.* take but never write (LEAD_ID is read-only
# in crm.deal.*: a deal gets its lead through crm.item.add's leadId).
READ_ONLY_UPPER = frozenset({"ID", "LEAD_ID", "STAGE_SEMANTIC_ID", "STATUS_SEMANTIC_ID", "CLOSED"})


def camel_fields(fields: dict[str, Any], entity_type_id: int) -> dict[str, Any]:
    """``crm.item`` fields by canonical name; unknown names are dropped."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        name = str(key)
        match = _UF_CAMEL.match(name)
        if match:
            out[f"UF_CRM_{match.group(1)}".upper()] = value
        elif name.upper().startswith("UF_CRM_"):
            out[name.upper()] = value
        elif name in _CAMEL_IN:
            canonical = _CAMEL_IN[name]
            if canonical == "STAGE_ID" and entity_type_id == LEAD:
                canonical = "STATUS_ID"
            out[canonical] = value
        elif name == "contactIds" and isinstance(value, list) and value:
            out.setdefault("CONTACT_ID", value[0])
    return out


def upper_fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {str(k).upper(): v for k, v in fields.items() if str(k).upper() not in READ_ONLY_UPPER}


def uf_camel(name: str) -> str:
    return "ufCrm_" + name[len("UF_CRM_") :]


def item_view(item: CrmItem, semantics: str, tz: timezone) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": item.id,
        "createdTime": iso(item.created_time, tz),
        "updatedTime": iso(item.updated_time, tz),
        "createdBy": item.created_by,
        "updatedBy": item.updated_by,
        "assignedById": item.assigned_by_id,
        "opened": "Y",
        "title": item.title,
        "stageId": item.stage_id,
        "opportunity": item.opportunity,
        "currencyId": item.currency_id,
        "companyId": item.company_id,
        "contactId": item.contact_id,
        "comments": item.comments,
        "movedBy": item.moved_by,
        "movedTime": iso(item.moved_time, tz),
        "contactIds": [item.contact_id] if item.contact_id else [],
        "entityTypeId": item.entity_type_id,
    }
    if item.entity_type_id == DEAL:
        view.update(
            categoryId=item.category_id,
            stageSemanticId=semantics,
            closed="Y" if semantics in ("S", "F") else "N",
            leadId=item.lead_id,
        )
    else:
        view.update(stageSemanticId=semantics)
    for name, value in item.extra.items():
        view[uf_camel(name)] = value
    return view


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def upper_view(item: CrmItem, semantics: str, tz: timezone) -> dict[str, Any]:
    stage_key, semantic_key = (
        ("STAGE_ID", "STAGE_SEMANTIC_ID")
        if item.entity_type_id == DEAL
        else ("STATUS_ID", "STATUS_SEMANTIC_ID")
    )
    view: dict[str, Any] = {
        "ID": str(item.id),
        "TITLE": item.title,
        stage_key: item.stage_id,
        semantic_key: semantics,
        "OPPORTUNITY": f"{item.opportunity:.2f}",
        "CURRENCY_ID": item.currency_id,
        "ASSIGNED_BY_ID": str(item.assigned_by_id),
        "CREATED_BY_ID": str(item.created_by),
        "MODIFY_BY_ID": str(item.updated_by),
        "DATE_CREATE": iso(item.created_time, tz),
        "DATE_MODIFY": iso(item.updated_time, tz),
        "MOVED_BY_ID": str(item.moved_by),
        "MOVED_TIME": iso(item.moved_time, tz),
        "CONTACT_ID": _text(item.contact_id or None),
        "COMPANY_ID": _text(item.company_id or None),
        "COMMENTS": item.comments,
        "OPENED": "Y",
    }
    if item.entity_type_id == DEAL:
        view.update(
            CATEGORY_ID=str(item.category_id),
            LEAD_ID=_text(item.lead_id),
            CLOSED="Y" if semantics in ("S", "F") else "N",
        )
    for name, value in item.extra.items():
        view[name] = value
    return view


def select_view(
    view: dict[str, Any], select: list[str] | None, *, id_key: str, upper: bool
) -> dict[str, Any]:
    """Only the selected fields (``*`` or nothing: all; the id always)."""
    if not select or "*" in select:
        return view
    wanted = {s.upper() if upper else s for s in select}
    if upper and "UF_*" in wanted:
        wanted |= {k for k in view if k.startswith("UF_")}
    return {k: v for k, v in view.items() if k in wanted or k == id_key}


Renderer = Callable[[CrmItem, str, timezone], dict[str, Any]]
