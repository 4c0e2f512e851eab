"""Changes to tasks and comments, shared by REST methods and the person API.

Every change fires the event Bitrix24 would fire, whoever made it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import timezone
from typing import TYPE_CHECKING, Any

from b24mw.emulator.outgoing.dispatch import UNDEFINED, EventDispatcher
from b24mw.emulator.rest.tasks import access
from b24mw.emulator.state.store import Comment, Store, Task
from b24mw.emulator.wire import dates
from b24mw.emulator.wire.errors import (
    B24Error,
    action_not_allowed,
    core_error,
    internal_arg_error,
    status_refused,
)

if TYPE_CHECKING:
    from b24mw.emulator.rest.im.chats import TaskChats

STATUS_CODES = range(1, 8)
READ_ONLY_FIELDS = frozenset(
    {
        "ID",
        "CREATED_DATE",
        "CHANGED_DATE",
        "CHANGED_BY",
        "CLOSED_DATE",
        "CLOSED_BY",
        "STATUS_CHANGED_DATE",
        "STATUS_CHANGED_BY",
        "REAL_STATUS",
        "GUID",
        "DATE_START",
    }
)
# The status actions (``tasks.task.<action>``); who may do each, from which
# status, and where it leads: ``emulator/rest/tasks/access.py``.
STATUS_ACTIONS = access.ACTIONS

_CAMEL_BOUNDARY = re.compile(r"(?<!^)(?=[A-Z])")
# The tasks module's own rule (ParseTextTrait::parseTags): `\s#([^\s,\[\]<>]+)`
# over " " + TITLE and " " + DESCRIPTION, without the /u flag — so only ASCII
# whitespace separates, and "[B]#tag[/B]" (a bracket before "#") is no tag.
_ASCII_SPACE = " \t\n\v\f\r"
_HASHTAG = re.compile(rf"[{_ASCII_SPACE}]#([^{_ASCII_SPACE},\[\]<>]+)")


def hashtags(*texts: str) -> list[str]:
    """The tags a portal takes from ``#words`` in a task's title and description."""
    return [tag for text in texts for tag in _HASHTAG.findall(" " + text)]


def field_name(key: str) -> str:
    """`responsibleId` and `RESPONSIBLE_ID` both name the same field."""
    if key.isupper() or "_" in key or not any(c.isupper() for c in key[1:]):
        return key.upper()
    return _CAMEL_BOUNDARY.sub("_", key).upper()


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


def as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return [value]


def parse_tags(value: Any) -> list[str]:
    raw: list[Any]
    if isinstance(value, str):
        raw = value.split(",")
    elif value is None:
        raw = []
    else:
        raw = as_list(value)
    tags: list[str] = []
    seen: set[str] = set()
    for item in raw:
        if not isinstance(item, str | int):
            continue
        name = str(item).strip()
        if name and name.casefold() not in seen:
            seen.add(name.casefold())
            tags.append(name)
    return tags


def _user(value: Any, message: str) -> int:
    user_id = as_int(value)
    if user_id is None or user_id <= 0:
        raise core_error(message)
    return user_id


def _users(value: Any, message: str) -> list[int]:
    """A list of user ids (a PHP form may send a map, a scalar or nothing)."""
    if value in (None, "", []):
        return []
    found: list[int] = []
    for item in as_list(value):
        user_id = _user(item, message)
        if user_id not in found:
            found.append(user_id)
    return found


def _flag(value: Any) -> bool:
    return value is True or str(value).strip().upper() in ("Y", "1", "TRUE")


class TaskService:
    def __init__(
        self,
        store: Store,
        events: EventDispatcher,
        clock: Callable[[], float],
        tz: timezone,
        chats: TaskChats,
        is_admin: Callable[[int], bool] = lambda user_id: False,
    ) -> None:
        self.store = store
        self.events = events
        self.clock = clock
        self.tz = tz
        # The new task card's chats: the portal writes system messages there.
        self.chats = chats
        # Whether a user is a portal administrator (only the REST user may be).
        self.is_admin = is_admin

    def actor(self, user_id: int) -> access.Actor:
        return access.Actor(user_id, admin=self.is_admin(user_id))

    def get(self, task_id: int) -> Task | None:
        return self.store.tasks.get(task_id)

    def add_task(self, fields: Any, actor: int) -> Task:
        if not isinstance(fields, Mapping) or not fields:
            raise internal_arg_error("Could not find value for parameter {fields}")
        normalized = {field_name(str(k)): v for k, v in fields.items()}
        title = normalized.get("TITLE")
        if not isinstance(title, str) or not title.strip():
            raise core_error("Task title not specified")
        if normalized.get("RESPONSIBLE_ID") in (None, "", 0, "0"):
            raise core_error("Assignee not specified")
        now = self.clock()
        task = Task(
            id=0,
            title=title,
            responsible_id=_user(
                normalized["RESPONSIBLE_ID"], 'User specified in the "Assignee" field not found'
            ),
            created_by=actor,
            created_date=now,
            changed_date=now,
            changed_by=actor,
            status_changed_date=now,
            status_changed_by=actor,
        )
        self._apply(task, normalized, actor, now, creating=True)
        task.id = self.store.new_task_id()
        self.store.put_task(task)
        self.chats.task_added(task)
        self.events.emit(
            "ONTASKADD",
            {
                "FIELDS_BEFORE": UNDEFINED,
                "FIELDS_AFTER": {"ID": task.id},
                "IS_ACCESSIBLE_BEFORE": "N",
                "IS_ACCESSIBLE_AFTER": UNDEFINED,
            },
        )
        return task

    def update_task(self, task_id: int, fields: Any, actor: int) -> Task:
        task = self.store.tasks.get(task_id)
        if task is None:
            raise action_not_allowed("Action on the task is not allowed (internal error)")
        if not isinstance(fields, Mapping) or not fields:
            raise internal_arg_error("Could not find value for parameter {fields}")
        normalized = {field_name(str(k)): v for k, v in fields.items()}
        if "TITLE" in normalized and not str(normalized["TITLE"] or "").strip():
            raise core_error("Task title not specified")
        now = self.clock()
        self._apply(task, normalized, actor, now, creating=False)
        self._touch(task, actor, now)
        self._emit_update(task.id)
        return task

    def change_status(self, task_id: int, action: str, actor: int) -> Task:
        """``action`` by ``actor`` (REST or a person): refused, like a portal,
        for a missing or unseen task, a status the action does not start
        from, or an actor without a role or administrator rights."""
        task = self.store.tasks.get(task_id)
        who = self.actor(actor)
        if task is None or not access.may(action, task, who):
            raise status_refused(action)
        now = self.clock()
        self._set_status(task, access.target(action, task, who), actor, now)
        self._touch(task, actor, now)
        self._emit_update(task.id)
        return task

    def refusal(self, task: Task, action: str, actor: int) -> str | None:
        """Why ``actor`` may not ``action`` the task (None: allowed)."""
        who = self.actor(actor)
        if access.may(action, task, who):
            return None
        return access.refusal_reason(action, task, who)

    def delete_task(self, task_id: int) -> None:
        if task_id not in self.store.tasks:
            raise B24Error("1048582", "No access to delete the task", 400)
        self.store.drop_task(task_id)
        self.events.emit(
            "ONTASKDELETE",
            {
                "FIELDS_BEFORE": {"ID": task_id},
                "FIELDS_AFTER": UNDEFINED,
                "IS_ACCESSIBLE_BEFORE": UNDEFINED,
                "IS_ACCESSIBLE_AFTER": "N",
            },
        )

    def add_comment(
        self,
        task_id: int,
        author_id: int,
        text: str,
        *,
        post_date: float | None = None,
        file_ids: Sequence[int] = (),
    ) -> Comment:
        """A classic comment (the new card's are chat messages: ``TaskChats.post``)."""
        if task_id not in self.store.tasks:
            raise core_error("Insufficient permissions to add a comment")
        if not text.strip() and not file_ids:
            raise core_error("Comment text not specified")
        comment = Comment(
            id=self.store.new_comment_id(),
            task_id=task_id,
            author_id=author_id,
            post_date=post_date if post_date is not None else self.clock(),
            message=text,
            file_ids=list(file_ids),
            attachment_ids=[self.store.new_attachment_id() for _ in file_ids],
        )
        self.store.put_comment(comment)
        self.events.emit(
            "ONTASKCOMMENTADD",
            {
                "FIELDS_BEFORE": UNDEFINED,
                "FIELDS_AFTER": {"ID": comment.id, "TASK_ID": task_id},
                "IS_ACCESSIBLE_BEFORE": UNDEFINED,
                "IS_ACCESSIBLE_AFTER": UNDEFINED,
            },
        )
        return comment

    def _emit_update(self, task_id: int) -> None:
        self.events.emit(
            "ONTASKUPDATE",
            {
                "FIELDS_BEFORE": {"ID": task_id},
                "FIELDS_AFTER": {"ID": task_id},
                "IS_ACCESSIBLE_BEFORE": UNDEFINED,
                "IS_ACCESSIBLE_AFTER": UNDEFINED,
            },
        )

    def _touch(self, task: Task, actor: int, now: float) -> None:
        task.changed_date = now
        task.changed_by = actor
        self.store.dirty = True

    def _set_status(self, task: Task, status: int, actor: int, now: float) -> None:
        if status == task.status:
            return
        task.status = status
        task.status_changed_date = now
        task.status_changed_by = actor
        self.chats.status_changed(task, status, actor)
        if status == 3 and task.date_start is None:
            task.date_start = now
        if status == 5:
            task.closed_date = now
            task.closed_by = actor
        else:
            task.closed_date = None
            task.closed_by = None

    def _apply(
        self, task: Task, fields: dict[str, Any], actor: int, now: float, *, creating: bool
    ) -> None:
        """Validate everything first, then write, so a rejected update changes nothing."""
        changes: dict[str, Any] = {}
        for name, value in fields.items():
            if name in READ_ONLY_FIELDS:
                continue
            if name == "TITLE":
                changes["title"] = str(value).strip()
            elif name == "DESCRIPTION":
                changes["description"] = "" if value is None else str(value)
            elif name == "RESPONSIBLE_ID":
                changes["responsible_id"] = _user(
                    value, 'User specified in the "Assignee" field not found'
                )
            elif name == "CREATED_BY":
                changes["created_by"] = _user(
                    value, 'User specified in the "Created by" field not found'
                )
            elif name == "STATUS":
                status = as_int(value)
                if status not in STATUS_CODES:
                    raise core_error("Invalid status")
                changes["status"] = status
            elif name == "PARENT_ID":
                changes["parent_id"] = self._parent(task, value, creating=creating)
            elif name in ("GROUP_ID", "PRIORITY"):
                number = as_int(value)
                changes[name.lower()] = number if number is not None and number >= 0 else 0
            elif name == "DEADLINE":
                changes["deadline"] = dates.parse(value, self.tz)
            elif name == "TAGS":
                changes["tags"] = parse_tags(value)
            elif name in ("ACCOMPLICES", "AUDITORS"):
                changes[name.lower()] = _users(value, f'A user in the "{name}" field not found')
            elif name == "TASK_CONTROL":
                changes["task_control"] = _flag(value)
            else:
                changes.setdefault("extra", {})[name] = value
        # Every add and update merges the text's #words into the tags (TAGS
        # given, else the task's current ones), from the title and description
        # as they are after this change.
        text_tags = hashtags(
            changes.get("title", "" if creating else task.title),
            changes.get("description", "" if creating else task.description),
        )
        if text_tags or not creating:
            base = changes.get("tags", [] if creating else task.tags)
            changes["tags"] = parse_tags([*base, *text_tags])
        status = changes.pop("status", None)
        extra = changes.pop("extra", None)
        for attr, value in changes.items():
            setattr(task, attr, value)
        if extra:
            task.extra.update(extra)
        if status is not None:
            if creating:
                task.status = status
                if status == 5:
                    task.closed_date, task.closed_by = now, actor
            else:
                self._set_status(task, status, actor, now)
        for tag in task.tags:
            self.store.tag_id(tag)

    def _parent(self, task: Task, value: Any, *, creating: bool) -> int | None:
        parent_id = as_int(value)
        if parent_id is None or parent_id <= 0:
            return None
        if not creating and parent_id == task.id:
            raise core_error("Cannot bind the node to itself")
        if parent_id not in self.store.tasks:
            raise core_error('Task specified in the "Parent Task" field not found')
        if not creating:
            ancestor = self.store.tasks.get(parent_id)
            while ancestor is not None and ancestor.parent_id is not None:
                if ancestor.parent_id == task.id:
                    raise core_error("Creating cyclic links in tasks is prohibited")
                ancestor = self.store.tasks.get(ancestor.parent_id)
        return parent_id
