"""`tasks.task.*` and `user.*` methods, and the registry of every method the portal knows."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from b24mw.emulator.rest import scopes
from b24mw.emulator.rest.crm.methods import CRM_METHODS
from b24mw.emulator.rest.im.messages import IM_METHODS
from b24mw.emulator.rest.methodkit import (
    PAGE_SIZE,
    Args,
    Handler,
    MethodContext,
    MethodResult,
    named,
    page,
)
from b24mw.emulator.rest.openlines import OPENLINE_METHODS
from b24mw.emulator.rest.tasks import access
from b24mw.emulator.rest.tasks.comments import COMMENT_METHODS
from b24mw.emulator.rest.tasks.filters import Field, apply_filter, parse_order, sort_items
from b24mw.emulator.rest.tasks.service import STATUS_ACTIONS, as_int, as_list
from b24mw.emulator.rest.tasks.views import TaskView
from b24mw.emulator.state.store import Task
from b24mw.emulator.wire.errors import (
    B24Error,
    action_not_allowed,
    internal_arg_error,
    wrong_task_id,
)

TASK_FILTERS: dict[str, Field[Task]] = {
    "ID": ("int", lambda t: t.id),
    "PARENT_ID": ("int", lambda t: t.parent_id or 0),
    "GROUP_ID": ("int", lambda t: t.group_id),
    "CREATED_BY": ("int", lambda t: t.created_by),
    "RESPONSIBLE_ID": ("int", lambda t: t.responsible_id),
    "CHANGED_BY": ("int", lambda t: t.changed_by),
    "STATUS_CHANGED_BY": ("int", lambda t: t.status_changed_by or 0),
    "CLOSED_BY": ("int", lambda t: t.closed_by or 0),
    "PRIORITY": ("int", lambda t: t.priority),
    "REAL_STATUS": ("int", lambda t: t.status),
    "STATUS": ("int", lambda t: t.status),
    "TITLE": ("str", lambda t: t.title),
    "TAG": ("tags", lambda t: t.tags),
    "CREATED_DATE": ("date", lambda t: t.created_date),
    "CHANGED_DATE": ("date", lambda t: t.changed_date),
    "CLOSED_DATE": ("date", lambda t: t.closed_date),
    "DEADLINE": ("date", lambda t: t.deadline),
    "DATE_START": ("date", lambda t: t.date_start),
}

_NONE: Any = None
TASK_ORDER: dict[str, Callable[[Task], Any]] = {
    "ID": lambda t: t.id,
    "TITLE": lambda t: t.title.casefold(),
    "DATE_START": lambda t: t.date_start,
    "CREATED_DATE": lambda t: t.created_date,
    "CHANGED_DATE": lambda t: t.changed_date,
    "CLOSED_DATE": lambda t: t.closed_date,
    "ACTIVITY_DATE": lambda t: t.changed_date,
    "DEADLINE": lambda t: t.deadline,
    "REAL_STATUS": lambda t: t.status,
    "STATUS": lambda t: t.status,
    "STATUS_COMPLETE": lambda t: 2 if t.status == 5 else 1,
    "PRIORITY": lambda t: t.priority,
    "GROUP_ID": lambda t: t.group_id,
    **{
        name: lambda t: _NONE
        for name in (
            "TIME_SPENT_IN_LOGS",
            "START_DATE_PLAN",
            "END_DATE_PLAN",
            "MARK",
            "CREATED_BY_LAST_NAME",
            "RESPONSIBLE_LAST_NAME",
            "TIME_ESTIMATE",
            "ALLOW_CHANGE_DEADLINE",
            "ALLOW_TIME_TRACKING",
            "MATCH_WORK_TIME",
            "FAVORITE",
            "SORTING",
            "IS_PINNED",
            "IS_PINNED_IN_GROUP",
        )
    },
}


def _task_id(params: dict[str, Any]) -> int:
    raw = params.get("taskid")
    if raw is None or raw == "":
        raise internal_arg_error(
            "CTaskItem All parameters in the constructor must have real class type"
        )
    task_id = as_int(raw)
    if task_id is None or task_id <= 0:
        raise wrong_task_id()
    return task_id


def _select(params: dict[str, Any]) -> set[str] | None:
    if "select" not in params:
        return None
    raw = params["select"]
    if not isinstance(raw, list | dict):
        shown = "{}" if raw in ("", None) else str(raw)
        raise internal_arg_error(
            f"Invalid value {shown} to match with parameter {{select}}. "
            "Should be value of type array."
        )
    names = TaskView.normalize_select(as_list(raw))
    return names or None


def _answer(ctx: MethodContext, task: Task, select: set[str] | None = None) -> MethodResult:
    """``{"task": ...}`` as `tasks.task.get` renders it for the caller: with the
    ``action`` block, and tags when `TAGS` is selected and the portal's
    `tasks.task.get` returns them (``task_get_tags``)."""
    with_tags = ctx.options is None or ctx.options.task_get_tags
    actions = access.allowed_actions(task, ctx.who)
    return MethodResult(
        {"task": ctx.view.render(task, select, with_tags=with_tags, actions=actions)}
    )


def _visible(ctx: MethodContext, task_id: int) -> Task | None:
    """The task, unless it is missing or the caller may not see it."""
    task = ctx.service.get(task_id)
    return task if task is not None and access.can_read(task, ctx.who) else None


def task_add(ctx: MethodContext, args: Args) -> MethodResult:
    task = ctx.service.add_task(named(args).get("fields"), ctx.actor)
    return _answer(ctx, task)


def task_get(ctx: MethodContext, args: Args) -> MethodResult:
    params = named(args)
    task_id = _task_id(params)
    select = _select(params)
    task = _visible(ctx, task_id)
    if task is None:
        # Missing or not visible to the caller: the same empty answer.
        return MethodResult([])
    return _answer(ctx, task, select)


def task_update(ctx: MethodContext, args: Args) -> MethodResult:
    params = named(args)
    task_id = _task_id(params)
    task = ctx.service.get(task_id)
    if task is not None and not access.can_edit(task, ctx.who):
        raise action_not_allowed()
    task = ctx.service.update_task(task_id, params.get("fields"), ctx.actor)
    return _answer(ctx, task)


def task_delete(ctx: MethodContext, args: Args) -> MethodResult:
    task_id = _task_id(named(args))
    task = ctx.service.get(task_id)
    if task is not None and not (ctx.who.admin or task.created_by == ctx.actor):
        raise B24Error("1048582", "No access to delete the task", 400)
    ctx.service.delete_task(task_id)
    return MethodResult({"task": True})


def _status_method(action: str) -> Handler:
    def handler(ctx: MethodContext, args: Args) -> MethodResult:
        task = ctx.service.change_status(_task_id(named(args)), action, ctx.actor)
        return _answer(ctx, task)

    return handler


def _bad_sort_key(_: str) -> Exception:
    return B24Error("0", "Invalid sorting key (internal error)", 400)


def task_list(ctx: MethodContext, args: Args) -> MethodResult:
    params = named(args)
    filter_spec = params.get("filter")
    if not isinstance(filter_spec, Mapping):
        filter_spec = {}
    select = _select(params)
    order = parse_order(params.get("order"), TASK_ORDER, _bad_sort_key) or [("ID", "desc")]
    start = as_int(params.get("start")) or 0
    who = ctx.who
    visible = [t for t in ctx.store.tasks.values() if access.can_read(t, who)]
    tasks = apply_filter(sorted(visible, key=lambda t: t.id), filter_spec, TASK_FILTERS, ctx.tz)
    if str(filter_spec.get("ONLY_ROOT_TASKS", "")).upper() == "Y":
        tasks = [t for t in tasks if t.parent_id is None]
    tasks = sort_items(tasks, order, TASK_ORDER)
    if start == -1:
        # Bulk-scan mode: no COUNT(*) ("total": 0) and no next; the caller pages
        # by a key (``>ID``) instead.
        rendered = [ctx.view.render(t, select, with_tags=True) for t in tasks[:PAGE_SIZE]]
        return MethodResult({"tasks": rendered}, total=0)
    chunk, next_start = page(tasks, start)
    rendered = [ctx.view.render(t, select, with_tags=True) for t in chunk]
    return MethodResult({"tasks": rendered}, total=len(tasks), next=next_start)


def _user(user_id: int) -> dict[str, Any]:
    return {
        "ID": str(user_id),
        "ACTIVE": True,
        "NAME": "User",
        "LAST_NAME": str(user_id),
        "SECOND_NAME": "",
        "EMAIL": f"user{user_id}@emulator.invalid",
        "XML_ID": "",
        "IS_ONLINE": "N",
        "USER_TYPE": "employee",
        "UF_DEPARTMENT": [1],
    }


def user_get(ctx: MethodContext, args: Args) -> MethodResult:
    """Every positive id is a user (any RESPONSIBLE_ID is accepted); a listing shows those seen."""
    params = named(args)
    filter_spec = params.get("filter")
    if not isinstance(filter_spec, Mapping):
        filter_spec = params
    wanted = {str(k).upper(): v for k, v in filter_spec.items()}.get("ID")
    if wanted is not None:
        ids = sorted({i for v in as_list(wanted) if (i := as_int(v)) is not None and i > 0})
    else:
        seen = {ctx.actor}
        for task in ctx.store.tasks.values():
            seen.update((task.created_by, task.responsible_id))
        seen.update(c.author_id for c in ctx.store.comments.values())
        seen.update(m.author_id for m in ctx.store.messages.values() if m.author_id)
        ids = sorted(seen)
    chunk, next_start = page(ids, as_int(params.get("start")) or 0)
    return MethodResult([_user(i) for i in chunk], total=len(ids), next=next_start)


def user_current(ctx: MethodContext, args: Args) -> MethodResult:
    return MethodResult(_user(ctx.actor))


def user_admin(ctx: MethodContext, args: Args) -> MethodResult:
    """Whether the caller may manage the portal's settings (an administrator)."""
    return MethodResult(ctx.who.admin)


def scope(ctx: MethodContext, args: Args) -> MethodResult:
    """The scopes the caller was granted; ``full=true``: every scope there is."""
    if str(named(args).get("full", "")).strip().lower() in ("1", "true", "y"):
        return MethodResult(sorted(scopes.KNOWN))
    return MethodResult(sorted(scopes.parse(ctx.granted_scope())))


METHODS: dict[str, Handler] = {
    "tasks.task.add": task_add,
    "tasks.task.get": task_get,
    "tasks.task.update": task_update,
    "tasks.task.delete": task_delete,
    "tasks.task.list": task_list,
    **{f"tasks.task.{action}": _status_method(action) for action in STATUS_ACTIONS},
    **COMMENT_METHODS,
    **IM_METHODS,
    **OPENLINE_METHODS,
    **CRM_METHODS,
    "user.get": user_get,
    "user.current": user_current,
    "user.admin": user_admin,
    "scope": scope,
}
