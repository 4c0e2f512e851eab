"""What the worker reads from Bitrix24 for the events it processes.

Events carry ids only, so every event needs a read.  The reads of one round
of inbox rows go out as one ``batch`` request (one unit of the 2 req/s quota
for up to 50 commands); each answer is parsed defensively into a snapshot.

A comment on the new task card (tasks 25.700+) is a message of the task's
chat: its event names the task and the message, and the read chains
``tasks.task.get`` (the task's ``chatId``) into ``im.dialog.messages.get``
within the same batch (``$result[...]``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from b24mw.bitrix24.client import CommandResult
from b24mw.webhooks.events import as_int

TASK_SELECT = [
    "ID",
    "TITLE",
    "DESCRIPTION",
    "RESPONSIBLE_ID",
    "STATUS",
    "CHANGED_BY",
    "CHANGED_DATE",
    "STATUS_CHANGED_DATE",
    # The task's chat on the new card (a portal before 25.700 has none).
    "CHAT_ID",
    # CRM bindings: ["D_12", "L_5", ...] (BITRIX24.md §6).
    "UF_CRM_TASK",
]


@dataclass(frozen=True, slots=True)
class TaskSnapshot:
    id: int
    title: str
    description: str
    responsible_id: int | None
    status: int | None
    changed_by: int | None
    changed_date: str | None
    status_changed_date: str | None
    tags: tuple[str, ...] = ()
    chat_id: int | None = None
    # The deal the task is bound to (UF_CRM_TASK "D_<id>"; the first of several).
    deal_id: int | None = None
    # False when the read that should have brought the tags did not (a
    # portal whose tasks.task.get ignores TAGS): "no tags" cannot be told.
    tags_known: bool = True


@dataclass(frozen=True, slots=True)
class Attachment:
    file_id: str
    name: str

    @property
    def checksum(self) -> str:
        """Bitrix24 does not send file contents with a comment; its disk file id
        identifies the file, so the same photo attached twice is one photo."""
        return hashlib.sha256(f"b24-file:{self.file_id}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CommentSnapshot:
    """A comment: a classic one (``task.commentitem.get``), or on the new task
    card a message of the task's chat (``in_chat``; ``id`` is the message id)."""

    id: int
    task_id: int
    author_id: int | None
    text: str
    post_date: str | None
    attachments: tuple[Attachment, ...] = field(default_factory=tuple)
    in_chat: bool = False

    @property
    def ref(self) -> str:
        """What the history correlates it by: comment and message ids are apart."""
        return f"message:{self.id}" if self.in_chat else f"comment:{self.id}"

    @property
    def ids(self) -> dict[str, int]:
        return {"message_id": self.id} if self.in_chat else {"comment_id": self.id}

    @property
    def is_system(self) -> bool:
        """A message the portal wrote (``author_id: 0``): "the task is completed"."""
        return self.in_chat and not self.author_id


def task_get(task_id: int, *, with_tags: bool = False) -> tuple[str, dict[str, Any]]:
    """The task; ``with_tags``: its tags too, in the same command (the tasks
    module's REST controller fills them when `select` has TAGS)."""
    select = [*TASK_SELECT, "TAGS"] if with_tags else TASK_SELECT
    return "tasks.task.get", {"taskId": task_id, "select": select}


def task_tags(task_id: int) -> tuple[str, dict[str, Any]]:
    """The fallback (``B24MW_WEBHOOK_TAGS_FROM=list``): a portal whose
    tasks.task.get ignores TAGS returns them from tasks.task.list."""
    return "tasks.task.list", {"filter": {"ID": task_id}, "select": ["ID", "TAGS"]}


def comment_get(task_id: int, comment_id: int) -> tuple[str, dict[str, Any]]:
    # Positional parameters: TASKID first, ITEMID second.
    return "task.commentitem.get", {"TASKID": task_id, "ITEMID": comment_id}


def message_get(task_key: str, message_id: int) -> tuple[str, dict[str, Any]]:
    """The one message of the chat of the task read under ``task_key`` in the
    same batch.  ``LAST_ID`` (the messages before it, newest first) and not
    ``FIRST_ID``: ``FIRST_ID=0`` would mean "from the start", and without
    either a reader with unread messages gets more than it asked for."""
    return "im.dialog.messages.get", {
        "DIALOG_ID": f"chat$result[{task_key}][task][chatId]",
        "LAST_ID": message_id + 1,
        "LIMIT": 1,
    }


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def tag_titles(result: Any) -> tuple[str, ...]:
    """The tags of the one task a ``tasks.task.list`` answer holds."""
    tasks = result.get("tasks") if isinstance(result, dict) else None
    if not isinstance(tasks, list) or not tasks or not isinstance(tasks[0], dict):
        return ()
    return titles_of(tasks[0].get("tags"))


def titles_of(tags: Any) -> tuple[str, ...]:
    """Tag names from either shape a portal answers with: a map of
    ``{"id", "title"}`` objects, or a list of names (`[]` when none)."""
    values: Iterable[Any] = tags.values() if isinstance(tags, dict) else tags or []
    titles = []
    for tag in values:
        title = tag.get("title") if isinstance(tag, dict) else tag
        if isinstance(title, str) and title.strip():
            titles.append(title.strip())
    return tuple(titles)


def parse_task(
    task_result: Any, tags_result: Any = None, *, tags_in_task: bool = False
) -> TaskSnapshot | None:
    """``None`` when the task is gone or not visible (``"result": []``).
    ``tags_in_task``: the tags come with the task (``select`` had TAGS)."""
    task = task_result.get("task") if isinstance(task_result, dict) else None
    if not isinstance(task, dict):
        return None
    task_id = as_int(task.get("id"))
    if task_id is None:
        return None
    if tags_in_task:
        tags, tags_known = titles_of(task.get("tags")), "tags" in task
    else:
        tags, tags_known = tag_titles(tags_result), True
    return TaskSnapshot(
        id=task_id,
        title=_text(task.get("title")),
        description=_text(task.get("description")),
        responsible_id=as_int(task.get("responsibleId")),
        status=as_int(task.get("status")),
        changed_by=as_int(task.get("changedBy")),
        changed_date=_str_or_none(task.get("changedDate")),
        status_changed_date=_str_or_none(task.get("statusChangedDate")),
        tags=tags,
        chat_id=as_int(task.get("chatId")) or None,
        deal_id=deal_of(task.get("ufCrmTask")),
        tags_known=tags_known,
    )


def deal_of(bindings: Any) -> int | None:
    """The first deal in a task's ``UF_CRM_TASK`` (``["D_12", "C_3"]``)."""
    values: Iterable[Any] = bindings.values() if isinstance(bindings, dict) else bindings or []
    if isinstance(bindings, str):
        values = [bindings]
    for value in values:
        if isinstance(value, str) and value.startswith("D_"):
            deal_id = as_int(value[2:])
            if deal_id:
                return deal_id
    return None


def _attachments(value: Any) -> tuple[Attachment, ...]:
    items: Iterable[Any] = value.values() if isinstance(value, dict) else value or []
    found = []
    for item in items:
        if not isinstance(item, dict):
            continue
        file_id = item.get("FILE_ID") or item.get("OBJECT_ID") or item.get("ATTACHMENT_ID")
        if file_id is not None and str(file_id):
            found.append(Attachment(str(file_id), _text(item.get("NAME"))))
    return tuple(found)


def parse_comment(result: Any, task_id: int) -> CommentSnapshot | None:
    if not isinstance(result, dict):
        return None
    comment_id = as_int(result.get("ID"))
    if comment_id is None:
        return None
    return CommentSnapshot(
        id=comment_id,
        task_id=task_id,
        author_id=as_int(result.get("AUTHOR_ID")),
        text=_text(result.get("POST_MESSAGE")),
        post_date=_str_or_none(result.get("POST_DATE")),
        attachments=_attachments(result.get("ATTACHED_OBJECTS")),
    )


def parse_message(result: Any, message_id: int, task_id: int) -> CommentSnapshot | None:
    """The message ``message_id`` in an ``im.dialog.messages.get`` answer;
    ``None`` when it is not there (deleted, or another chat's)."""
    if not isinstance(result, dict):
        return None
    messages = result.get("messages")
    found = next(
        (
            m
            for m in (messages if isinstance(messages, list) else [])
            if isinstance(m, dict) and as_int(m.get("id")) == message_id
        ),
        None,
    )
    if found is None:
        return None
    params = found.get("params")
    file_ids = params.get("FILE_ID") if isinstance(params, dict) else None
    files = result.get("files")
    names = {
        str(f.get("id")): _text(f.get("name"))
        for f in (files if isinstance(files, list) else [])
        if isinstance(f, dict)
    }
    attachments = tuple(
        Attachment(str(file_id), names.get(str(file_id), ""))
        for file_id in (file_ids if isinstance(file_ids, list) else [])
        if file_id is not None and str(file_id)
    )
    return CommentSnapshot(
        id=message_id,
        task_id=task_id,
        author_id=as_int(found.get("author_id")),
        text=_text(found.get("text")),
        post_date=_str_or_none(found.get("date")),
        attachments=attachments,
        in_chat=True,
    )


def portal_time(item: CommandResult | None) -> datetime | None:
    """When the portal ran a command: its ``time.start`` (unix seconds)."""
    start = (item.time or {}).get("start") if item is not None else None
    if isinstance(start, int | float) and not isinstance(start, bool) and math.isfinite(start):
        try:
            return datetime.fromtimestamp(start, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def ok(result: CommandResult | None) -> Any:
    return result.result if result is not None and result.ok else None
