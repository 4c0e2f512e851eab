"""The CRM part of the control API: a person's deals and leads, and their state.

``POST /_emulator/person/deals`` (``title``, ``category_id``, ``stage_id``,
``opportunity``, ``currency_id``, ``assigned_by_id``, ``lead_id``?,
``contact_id``?, ``company_id``?, ``comments``?, ``fields``? — user fields by
``UF_CRM_*`` name), ``PATCH``/``DELETE /_emulator/person/deals/{id}`` (the
same keys, and ``changed_by``); the same for leads with ``status_id``.  The
change goes through the portal's own rules (required fields, automation) and
fires its events.  ``GET /_emulator/deals[/{id}]`` and
``GET /_emulator/leads[/{id}]``: the state, a deal with its ``timeline``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from b24mw.emulator.control.core import ControlError, guarded, json_object, portal_of
from b24mw.emulator.control.tasks import _actor, _person
from b24mw.emulator.portal import Portal
from b24mw.emulator.state.crm import DEAL, LEAD, CrmItem
from b24mw.emulator.wire.dates import iso

_COMMON = {
    "title": "TITLE",
    "opportunity": "OPPORTUNITY",
    "currency_id": "CURRENCY_ID",
    "assigned_by_id": "ASSIGNED_BY_ID",
    "contact_id": "CONTACT_ID",
    "company_id": "COMPANY_ID",
    "comments": "COMMENTS",
}
DEAL_KEYS = {**_COMMON, "category_id": "CATEGORY_ID", "stage_id": "STAGE_ID", "lead_id": "LEAD_ID"}
LEAD_KEYS = {**_COMMON, "status_id": "STATUS_ID"}
KEYS = {DEAL: DEAL_KEYS, LEAD: LEAD_KEYS}


def _fields(body: dict[str, Any], entity_type_id: int, extra: set[str]) -> dict[str, Any]:
    keys = KEYS[entity_type_id]
    unknown = set(body) - set(keys) - {"fields"} - extra
    if unknown:
        raise ControlError(400, "bad_request", f"unknown fields: {', '.join(sorted(unknown))}")
    fields = {keys[k]: v for k, v in body.items() if k in keys}
    user_fields = body.get("fields", {})
    if not isinstance(user_fields, dict) or not all(
        str(k).upper().startswith("UF_CRM_") for k in user_fields
    ):
        raise ControlError(400, "bad_request", "fields must map UF_CRM_* names to values")
    fields.update({str(k).upper(): v for k, v in user_fields.items()})
    return fields


def state(portal: Portal, item: CrmItem) -> dict[str, Any]:
    stage_key = "stage_id" if item.entity_type_id == DEAL else "status_id"
    out: dict[str, Any] = {
        "id": item.id,
        "title": item.title,
        stage_key: item.stage_id,
        "semantics": portal.crm.semantics(item),
        "opportunity": item.opportunity,
        "currency_id": item.currency_id,
        "assigned_by_id": item.assigned_by_id,
        "contact_id": item.contact_id,
        "company_id": item.company_id,
        "comments": item.comments,
        "fields": dict(item.extra),
        "created_by": item.created_by,
        "updated_by": item.updated_by,
        "updated_time": iso(item.updated_time, portal.tz),
        "moved_by": item.moved_by,
    }
    if item.entity_type_id == DEAL:
        out["category_id"] = item.category_id
        out["lead_id"] = item.lead_id
    out["timeline"] = [
        {
            "id": c.id,
            "author_id": c.author_id,
            "comment": c.comment,
            "created": iso(c.created, portal.tz),
        }
        for c in sorted(
            portal.store.crm.comments_of(item.entity_type_id, item.id), key=lambda c: c.id
        )
    ]
    return out


def _item(request: Request, entity_type_id: int) -> CrmItem:
    item = portal_of(request).store.crm.items[entity_type_id].get(request.path_params["item_id"])
    if item is None:
        raise ControlError(
            404, "not_found", f"no such {'deal' if entity_type_id == DEAL else 'lead'}"
        )
    return item


def _routes(entity_type_id: int, plural: str) -> list[Route]:
    @guarded
    async def create(request: Request) -> Response:
        portal = portal_of(request)
        body = await json_object(request)
        fields = _fields(body, entity_type_id, {"created_by"})
        actor = _actor(body, "created_by", _person(portal))
        fields.setdefault("ASSIGNED_BY_ID", actor)
        item = portal.crm.add(entity_type_id, fields, actor)
        return JSONResponse(state(portal, item), 201)

    @guarded
    async def update(request: Request) -> Response:
        portal = portal_of(request)
        item = _item(request, entity_type_id)
        body = await json_object(request)
        fields = _fields(body, entity_type_id, {"changed_by"})
        fields.pop("CATEGORY_ID", None)
        if not fields:
            raise ControlError(400, "bad_request", "nothing to change")
        actor = _actor(body, "changed_by", _person(portal))
        portal.crm.update(entity_type_id, item.id, fields, actor)
        return JSONResponse(state(portal, item))

    @guarded
    async def delete(request: Request) -> Response:
        portal = portal_of(request)
        item = _item(request, entity_type_id)
        portal.crm.delete(entity_type_id, item.id)
        return JSONResponse({"deleted": item.id})

    @guarded
    async def show(request: Request) -> Response:
        return JSONResponse(state(portal_of(request), _item(request, entity_type_id)))

    @guarded
    async def listing(request: Request) -> Response:
        portal = portal_of(request)
        items = sorted(portal.store.crm.items[entity_type_id].values(), key=lambda i: i.id)
        return JSONResponse([state(portal, i) for i in items])

    return [
        Route(f"/_emulator/person/{plural}", create, methods=["POST"]),
        Route(f"/_emulator/person/{plural}/{{item_id:int}}", update, methods=["PATCH"]),
        Route(f"/_emulator/person/{plural}/{{item_id:int}}", delete, methods=["DELETE"]),
        Route(f"/_emulator/{plural}", listing, methods=["GET"]),
        Route(f"/_emulator/{plural}/{{item_id:int}}", show, methods=["GET"]),
    ]


ROUTES = [*_routes(DEAL, "deals"), *_routes(LEAD, "leads")]
