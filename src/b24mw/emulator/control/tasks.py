"""Acting as a person in the portal: the same changes (and events) a user makes in the UI."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from b24mw.emulator.control.core import ControlError, guarded, json_object, portal_of
from b24mw.emulator.rest.tasks.service import STATUS_ACTIONS, as_int
from b24mw.emulator.state.store import Task
from b24mw.emulator.wire.errors import B24Error

# person API name -> Bitrix24 field
TASK_FIELDS = {
    "title": "TITLE",
    "description": "DESCRIPTION",
    "responsible_id": "RESPONSIBLE_ID",
    "created_by": "CREATED_BY",
    "tags": "TAGS",
    "parent_id": "PARENT_ID",
    "deadline": "DEADLINE",
    "accomplices": "ACCOMPLICES",
    "auditors": "AUDITORS",
    "task_control": "TASK_CONTROL",
}


def _fields(body: dict[str, Any], allowed: set[str]) -> dict[str, Any]:
    unknown = set(body) - allowed
    if unknown:
        raise ControlError(400, "bad_request", f"unknown fields: {', '.join(sorted(unknown))}")
    if "tags" in body and not isinstance(body["tags"], list):
        raise ControlError(400, "bad_request", "tags must be a list of strings")
    for key in ("accomplices", "auditors"):
        if key in body and not isinstance(body[key], list):
            raise ControlError(400, "bad_request", f"{key} must be a list of user ids")
    if "task_control" in body and not isinstance(body["task_control"], bool):
        raise ControlError(400, "bad_request", "task_control must be true or false")
    fields = {TASK_FIELDS[k]: v for k, v in body.items() if k in TASK_FIELDS}
    if "TAGS" in fields and not fields["TAGS"]:
        # An empty list would vanish from a PHP form; here it means "no tags".
        fields["TAGS"] = ""
    if "TASK_CONTROL" in fields:
        fields["TASK_CONTROL"] = "Y" if fields["TASK_CONTROL"] else "N"
    return fields


def _actor(body: dict[str, Any], key: str, default: int) -> int:
    if key not in body:
        return default
    actor = as_int(body[key])
    if actor is None or actor <= 0:
        raise ControlError(400, "bad_request", f"{key} must be a positive user id")
    return actor


def _person(portal: Any) -> int:
    """Who acts when the caller names nobody: a person, never the integration's
    own webhook user (the middleware ignores changes made by that user)."""
    return int(portal.config.rest_user) + 1


def _task(request: Request) -> Task:
    task = portal_of(request).store.tasks.get(request.path_params["task_id"])
    if task is None:
        raise ControlError(404, "not_found", "no such task")
    return task


@guarded
async def create_task(request: Request) -> Response:
    portal = portal_of(request)
    body = await json_object(request)
    fields = _fields(body, set(TASK_FIELDS))
    actor = _actor(body, "created_by", _person(portal))
    task = portal.service.add_task(fields, actor)
    return JSONResponse(portal.view.state(task), 201)


@guarded
async def update_task(request: Request) -> Response:
    portal = portal_of(request)
    task = _task(request)
    body = await json_object(request)
    fields = _fields(body, set(TASK_FIELDS) | {"changed_by"})
    actor = _actor(body, "changed_by", _person(portal))
    if not fields:
        raise ControlError(400, "bad_request", "nothing to change")
    portal.service.update_task(task.id, fields, actor)
    return JSONResponse(portal.view.state(task))


@guarded
async def delete_task(request: Request) -> Response:
    portal = portal_of(request)
    task = _task(request)
    portal.service.delete_task(task.id)
    return JSONResponse({"deleted": task.id})


@guarded
async def add_comment(request: Request) -> Response:
    """A person's comment: a classic comment, or on the new card a message of
    the task's chat.  ``files``: ``{"name", "size"?}`` uploads a new file to
    Drive, ``{"id"}`` attaches one already there."""
    portal = portal_of(request)
    task = _task(request)
    body = await json_object(request)
    unknown = set(body) - {"author_id", "text", "files"}
    if unknown:
        raise ControlError(400, "bad_request", f"unknown fields: {', '.join(sorted(unknown))}")
    text = body.get("text", "")
    if not isinstance(text, str):
        raise ControlError(400, "bad_request", "text must be a string")
    author = _actor(body, "author_id", _person(portal))
    chats = portal.service.chats
    try:
        file_ids = chats.file_ids(body.get("files"), author)
    except ValueError as exc:
        raise ControlError(400, "bad_request", str(exc)) from exc
    if chats.new_card:
        message = chats.post(task.id, author, text, file_ids=file_ids)
        return JSONResponse(portal.view.message_state(message), 201)
    comment = portal.service.add_comment(task.id, author, text, file_ids=file_ids)
    return JSONResponse(portal.view.comment_state(comment), 201)


@guarded
async def change_status(request: Request) -> Response:
    """A person changes the task's status, under the same rules as REST: the
    status must allow the action and the person needs a role on the task
    (persons are never administrators).  Refused: 409 saying why."""
    portal = portal_of(request)
    task = _task(request)
    body = await json_object(request)
    action = body.get("action")
    if action not in STATUS_ACTIONS:
        raise ControlError(400, "bad_request", f"action must be one of {', '.join(STATUS_ACTIONS)}")
    actor = _actor(body, "actor_id", task.responsible_id)
    reason = portal.service.refusal(task, action, actor)
    if reason is not None:
        raise ControlError(409, "action_not_allowed", reason)
    try:
        portal.service.change_status(task.id, action, actor)
    except B24Error as exc:
        raise ControlError(409, "action_not_allowed", exc.description) from exc
    return JSONResponse(portal.view.state(task))


ROUTES = [
    Route("/_emulator/person/tasks", create_task, methods=["POST"]),
    Route("/_emulator/person/tasks/{task_id:int}", update_task, methods=["PATCH"]),
    Route("/_emulator/person/tasks/{task_id:int}", delete_task, methods=["DELETE"]),
    Route("/_emulator/person/tasks/{task_id:int}/comments", add_comment, methods=["POST"]),
    Route("/_emulator/person/tasks/{task_id:int}/status", change_status, methods=["POST"]),
]
