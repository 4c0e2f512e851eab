"""Control routes for open lines: a customer starts a session, people write
in it, an operator closes it (the same changes and events as in the UI)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from b24mw.emulator.control.core import ControlError, guarded, json_object, portal_of
from b24mw.emulator.rest.openlines import parse_crm_entity
from b24mw.emulator.state.store import OpenLineSession

SESSION_FIELDS = {"line_id", "connector", "client_name", "crm_entity"}
MESSAGE_SENDERS = ("client", "operator", "bot")


def _session(request: Request) -> OpenLineSession:
    session = portal_of(request).store.ol_sessions.get(request.path_params["session_id"])
    if session is None:
        raise ControlError(404, "not_found", "no such session")
    return session


@guarded
async def start_session(request: Request) -> Response:
    portal = portal_of(request)
    body = await json_object(request)
    unknown = set(body) - SESSION_FIELDS
    if unknown:
        raise ControlError(400, "bad_request", f"unknown fields: {', '.join(sorted(unknown))}")
    line_id = body.get("line_id", 1)
    if not isinstance(line_id, int) or isinstance(line_id, bool) or line_id <= 0:
        raise ControlError(400, "bad_request", "line_id must be a positive integer")
    connector = body.get("connector", "livechat")
    if not isinstance(connector, str) or not connector.strip() or "|" in connector:
        raise ControlError(400, "bad_request", "connector must be a name such as telegram")
    client_name = body.get("client_name", "Guest")
    if not isinstance(client_name, str) or not client_name.strip():
        raise ControlError(400, "bad_request", "client_name must be a non-empty string")
    crm_entity = body.get("crm_entity")
    if crm_entity is not None:
        if not isinstance(crm_entity, str):
            raise ControlError(400, "bad_request", "crm_entity must be a string such as D_12")
        try:
            parse_crm_entity(crm_entity)
        except ValueError as exc:
            raise ControlError(400, "bad_request", str(exc)) from exc
    session = portal.openlines.start(line_id, connector.strip(), client_name.strip(), crm_entity)
    return JSONResponse(portal.openlines.state(session), 201)


@guarded
async def add_message(request: Request) -> Response:
    portal = portal_of(request)
    session = _session(request)
    body = await json_object(request)
    unknown = set(body) - {"from", "text"}
    if unknown:
        raise ControlError(400, "bad_request", f"unknown fields: {', '.join(sorted(unknown))}")
    sender = body.get("from", "client")
    if sender not in MESSAGE_SENDERS:
        raise ControlError(400, "bad_request", f"from must be one of {', '.join(MESSAGE_SENDERS)}")
    text = body.get("text")
    if not isinstance(text, str) or not text:
        raise ControlError(400, "bad_request", "text must be a non-empty string")
    try:
        message = portal.openlines.post(session, sender, text)
    except ValueError as exc:
        raise ControlError(409, "session_closed", str(exc)) from exc
    return JSONResponse(
        {"id": message.id, "chat_id": message.chat_id, "author_id": message.author_id}, 201
    )


@guarded
async def close_session(request: Request) -> Response:
    portal = portal_of(request)
    session = portal.openlines.close(_session(request))
    return JSONResponse(portal.openlines.state(session))


@guarded
async def get_session(request: Request) -> Response:
    return JSONResponse(portal_of(request).openlines.state(_session(request)))


ROUTES = [
    Route("/_emulator/person/openlines/sessions", start_session, methods=["POST"]),
    Route(
        "/_emulator/person/openlines/sessions/{session_id:int}/messages",
        add_message,
        methods=["POST"],
    ),
    Route(
        "/_emulator/person/openlines/sessions/{session_id:int}/close",
        close_session,
        methods=["POST"],
    ),
    Route("/_emulator/openlines/sessions/{session_id:int}", get_session, methods=["GET"]),
]
