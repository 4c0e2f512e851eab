"""`task.commentitem.*`: the legacy comment methods with positional parameters.

These methods bind arguments by position, not by name: `{"TASKID": 5, "FIELDS": {...}}`
works because of its key order, and the same keys in the other order fail exactly as
the real portal fails (ERROR_CORE, "Param #0 (taskId) ... expected to be of type").

On the new task card (tasks 25.700+, `api-reference/tasks/tasks-new.md`) only
`add` still works, and writes a message into the task's chat.  `get`,
`getlist`, `update` and `delete` "do not work"; what they answer is not
documented, so the emulator answers as the module does for a task whose
comments are not forum messages: `getlist` an empty list (the silent answer,
the one that can mislead a caller), `get` "not found", `update`/`delete`
"Action is not allowed".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from b24mw.emulator.outgoing.dispatch import UNDEFINED
from b24mw.emulator.rest.methodkit import Args, Handler, MethodContext, MethodResult
from b24mw.emulator.rest.tasks import access
from b24mw.emulator.rest.tasks.filters import (
    Field,
    apply_filter,
    parse_order,
    sort_items,
    split_key,
)
from b24mw.emulator.rest.tasks.service import as_int
from b24mw.emulator.state.store import Comment
from b24mw.emulator.wire import dates
from b24mw.emulator.wire.errors import B24Error, core_error

ADD_FIELDS = frozenset({"POST_MESSAGE", "AUTHOR_ID", "POST_DATE", "UF_FORUM_MESSAGE_DOC"})
NOT_FOUND = (
    "TASKS_ERROR_EXCEPTION_#512; Check listitem not found or not accessible; "
    "512/TE/ITEM_NOT_FOUND_OR_NOT_ACCESSIBLE"
)
NOT_ALLOWED = "TASKS_ERROR_EXCEPTION_#4; Action is not allowed; 4/TE/ACTION_NOT_ALLOWED"
COMMENT_FILTERS: dict[str, Field[Comment]] = {
    "ID": ("int", lambda c: c.id),
    "AUTHOR_ID": ("int", lambda c: c.author_id),
    "AUTHOR_NAME": ("str", lambda c: f"User {c.author_id}"),
    "POST_DATE": ("date", lambda c: c.post_date),
}
COMMENT_ORDER: dict[str, Callable[[Comment], Any]] = {
    "ID": lambda c: c.id,
    "AUTHOR_ID": lambda c: c.author_id,
    "AUTHOR_NAME": lambda c: f"User {c.author_id}",
    "AUTHOR_EMAIL": lambda c: "",
    "POST_DATE": lambda c: c.post_date,
}
_FILTER_OPS = frozenset({"", "!", "<", "<=", ">", ">="})


def positional(args: Args) -> list[Any]:
    if isinstance(args, list):
        return args
    return [value for key, value in args.items() if str(key).lower() != "auth"]


def _wrong(message: str) -> B24Error:
    return core_error(f"TASKS_ERROR_EXCEPTION_#256; {message}; 256/TE/WRONG_ARGUMENTS")


class _Params:
    def __init__(self, method: str, args: Args) -> None:
        self.method = f"ctaskcommentitem::{method}()"
        self.values = positional(args)

    def integer(self, index: int, name: str) -> int:
        if index >= len(self.values):
            raise _wrong(
                f"Param #{index} ({name}) expected by method {self.method}, but not given."
            )
        value = as_int(self.values[index])
        if value is None:
            raise _wrong(
                f"Param #{index} ({name}) for method {self.method} expected to be of type "
                '"integer", but given something else.'
            )
        return value

    def array(self, index: int, name: str, *, required: bool) -> dict[str, Any]:
        if index >= len(self.values):
            if required:
                raise _wrong(
                    f"Param #{index} ({name}) expected by method {self.method}, but not given."
                )
            return {}
        value = self.values[index]
        if isinstance(value, list):
            return {str(i): v for i, v in enumerate(value)}
        if not isinstance(value, Mapping):
            raise _wrong(
                f"Param #{index} ({name}) for method {self.method} expected to be of type "
                '"array", but given something else.'
            )
        return {str(k): v for k, v in value.items()}

    def forbid(self, index: int, name: str, key: str) -> B24Error:
        return _wrong(
            f'Param #{index} ({name}) for method {self.method} must not contain key "{key}".'
        )


def _writable(params: _Params, index: int) -> dict[str, Any]:
    fields = params.array(index, "arFields", required=True)
    for key in fields:
        if key.upper() not in ADD_FIELDS:
            raise params.forbid(index, "arFields", key)
    return {k.upper(): v for k, v in fields.items()}


def _readable(ctx: MethodContext, task_id: int) -> bool:
    """The caller may see the task (a missing task is not readable either)."""
    task = ctx.store.tasks.get(task_id)
    return task is not None and access.can_read(task, ctx.who)


def comment_add(ctx: MethodContext, args: Args) -> MethodResult:
    params = _Params("add", args)
    task_id = params.integer(0, "taskId")
    upper = _writable(params, 1)
    if not _readable(ctx, task_id):
        # As for a task that does not exist (CTaskItem's read check fails first).
        raise core_error("Insufficient permissions to add a comment")
    text = upper.get("POST_MESSAGE")
    author = as_int(upper.get("AUTHOR_ID"))
    author_id = author if author is not None and author > 0 else ctx.actor
    text = text if isinstance(text, str) else ""
    post_date = dates.parse(upper.get("POST_DATE"), ctx.tz)
    chats = ctx.service.chats
    if chats.new_card:
        # Still works on the new card: a chat message.  Which id it answers
        # with is not documented; here the message's (UNCONFIRMED).
        message = chats.post(task_id, author_id, text, date=post_date, with_uuid=False)
        return MethodResult(message.id)
    comment = ctx.service.add_comment(task_id, author_id, text, post_date=post_date)
    return MethodResult(comment.id)


def _visible(ctx: MethodContext, task_id: int) -> list[Comment]:
    if ctx.service.chats.new_card or not _readable(ctx, task_id):
        # New card: the task's comments live in its chat, out of reach of
        # commentitem.*; a task the caller cannot see shows none either.
        return []
    return ctx.store.comments_of(task_id)


def comment_get(ctx: MethodContext, args: Args) -> MethodResult:
    params = _Params("get", args)
    task_id = params.integer(0, "taskId")
    item_id = params.integer(1, "itemId")
    for comment in _visible(ctx, task_id):
        if comment.id == item_id:
            return MethodResult(ctx.view.comment(comment))
    raise core_error(NOT_FOUND)


def _editable(ctx: MethodContext, task_id: int, item_id: int) -> Comment:
    """The comment ``update``/``delete`` may change: an administrator any
    comment, anyone else only their own (UNCONFIRMED: the forum's rules)."""
    comment = ctx.store.comments.get(item_id)
    if ctx.service.chats.new_card or comment is None or comment.task_id != task_id:
        raise core_error(NOT_ALLOWED)
    if not (ctx.who.admin or comment.author_id == ctx.actor):
        raise core_error(NOT_ALLOWED)
    return comment


def _comment_event(ctx: MethodContext, event: str, comment: Comment, action: str) -> None:
    # The tasks module's event filter: FIELDS_AFTER repeats the ids with ACTION.
    ids = {"ID": comment.id, "TASK_ID": comment.task_id}
    ctx.service.events.emit(
        event,
        {
            "FIELDS_BEFORE": ids,
            "FIELDS_AFTER": {**ids, "ACTION": action},
            "IS_ACCESSIBLE_BEFORE": UNDEFINED,
            "IS_ACCESSIBLE_AFTER": UNDEFINED,
        },
    )


def comment_update(ctx: MethodContext, args: Args) -> MethodResult:
    params = _Params("update", args)
    task_id = params.integer(0, "taskId")
    item_id = params.integer(1, "itemId")
    upper = _writable(params, 2)
    comment = _editable(ctx, task_id, item_id)
    text = upper.get("POST_MESSAGE")
    if not isinstance(text, str) or not text.strip():
        raise core_error("Comment text not specified")
    comment.message = text
    ctx.store.dirty = True
    _comment_event(ctx, "ONTASKCOMMENTUPDATE", comment, "EDIT")
    return MethodResult(True)


def comment_delete(ctx: MethodContext, args: Args) -> MethodResult:
    params = _Params("delete", args)
    task_id = params.integer(0, "taskId")
    item_id = params.integer(1, "itemId")
    comment = _editable(ctx, task_id, item_id)
    ctx.store.comments.pop(comment.id, None)
    siblings = ctx.store.comments_by_task.get(task_id, [])
    if comment.id in siblings:
        siblings.remove(comment.id)
    ctx.store.dirty = True
    _comment_event(ctx, "ONTASKCOMMENTDELETE", comment, "DEL")
    return MethodResult(True)


def comment_getlist(ctx: MethodContext, args: Args) -> MethodResult:
    params = _Params("getlist", args)
    task_id = params.integer(0, "taskId")
    raw_order = params.array(1, "arOrder", required=False)
    raw_filter = params.array(2, "arFilter", required=False)
    order = parse_order(raw_order, COMMENT_ORDER, lambda key: params.forbid(1, "arOrder", key))
    for key in raw_filter:
        op, name = split_key(key)
        if op not in _FILTER_OPS or name.upper() not in COMMENT_FILTERS:
            raise params.forbid(2, "arFilter", key)
    if not _readable(ctx, task_id):
        raise core_error(
            "TASKS_ERROR_EXCEPTION_#8; Action failed; 8/TE/ACTION_FAILED_TO_BE_PROCESSED"
        )
    comments = apply_filter(_visible(ctx, task_id), raw_filter, COMMENT_FILTERS, ctx.tz)
    comments = sort_items(comments, order or [("ID", "desc")], COMMENT_ORDER)
    return MethodResult([ctx.view.comment(c) for c in comments])


COMMENT_METHODS: dict[str, Handler] = {
    "task.commentitem.add": comment_add,
    "task.commentitem.get": comment_get,
    "task.commentitem.getlist": comment_getlist,
    "task.commentitem.update": comment_update,
    "task.commentitem.delete": comment_delete,
}
