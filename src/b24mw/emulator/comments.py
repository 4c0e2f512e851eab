"""`task.commentitem.*`: the legacy comment methods with positional parameters.

These methods bind arguments by position, not by name: `{"TASKID": 5, "FIELDS": {...}}`
works because of its key order, and the same keys in the other order fail exactly as
the real portal fails (ERROR_CORE, "Param #0 (taskId) ... expected to be of type").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from b24mw.emulator import dates
from b24mw.emulator.errors import B24Error, core_error
from b24mw.emulator.filters import Field, apply_filter, parse_order, sort_items, split_key
from b24mw.emulator.methodkit import Args, Handler, MethodContext, MethodResult
from b24mw.emulator.service import as_int
from b24mw.emulator.state import Comment

ADD_FIELDS = frozenset({"POST_MESSAGE", "AUTHOR_ID", "POST_DATE", "UF_FORUM_MESSAGE_DOC"})
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


def comment_add(ctx: MethodContext, args: Args) -> MethodResult:
    params = _Params("add", args)
    task_id = params.integer(0, "taskId")
    fields = params.array(1, "arFields", required=True)
    for key in fields:
        if key.upper() not in ADD_FIELDS:
            raise params.forbid(1, "arFields", key)
    upper = {k.upper(): v for k, v in fields.items()}
    text = upper.get("POST_MESSAGE")
    author = as_int(upper.get("AUTHOR_ID"))
    comment = ctx.service.add_comment(
        task_id,
        author if author is not None and author > 0 else ctx.actor,
        text if isinstance(text, str) else "",
        post_date=dates.parse(upper.get("POST_DATE"), ctx.tz),
    )
    return MethodResult(comment.id)


def _visible(ctx: MethodContext, task_id: int) -> list[Comment]:
    # New-card messages live in the task chat, out of reach of commentitem.*.
    return [c for c in ctx.store.comments_of(task_id) if not c.new_card]


def comment_get(ctx: MethodContext, args: Args) -> MethodResult:
    params = _Params("get", args)
    task_id = params.integer(0, "taskId")
    item_id = params.integer(1, "itemId")
    for comment in _visible(ctx, task_id):
        if comment.id == item_id:
            return MethodResult(ctx.view.comment(comment))
    raise core_error(
        "TASKS_ERROR_EXCEPTION_#512; Check listitem not found or not accessible; "
        "512/TE/ITEM_NOT_FOUND_OR_NOT_ACCESSIBLE"
    )


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
    if task_id not in ctx.store.tasks:
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
}
