"""How the portal's data looks on the wire (REST) and to the control API."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timezone
from typing import Any

from b24mw.emulator.rest.tasks.service import field_name
from b24mw.emulator.state.store import Comment, Message, Store, Task
from b24mw.emulator.wire.dates import iso


def camel(name: str) -> str:
    head, *rest = name.lower().split("_")
    return head + "".join(part.title() for part in rest)


def php_map(mapping: dict[str, Any]) -> dict[str, Any] | list[Any]:
    """PHP's json_encode turns an empty associative array into `[]`."""
    return mapping if mapping else []


def _opt_str(value: int | None) -> str | None:
    return None if value is None else str(value)


def user_card(user_id: int) -> dict[str, str]:
    return {
        "id": str(user_id),
        "name": f"User {user_id}",
        "link": f"/company/personal/user/{user_id}/",
        "icon": "/bitrix/images/tasks/default_avatar.png",
        "workPosition": "",
    }


class TaskView:
    """Renders tasks with camelCase keys, string ids and portal-time dates."""

    def __init__(
        self,
        store: Store,
        tz: timezone,
        chat_id: Callable[[Task], int | None] = lambda task: None,
    ) -> None:
        self.store = store
        self.tz = tz
        # The task's chat on the new card (None on the classic card).
        self.chat_id = chat_id
        d = self._date
        self.fields: list[tuple[str, Callable[[Task], Any]]] = [
            ("ID", lambda t: str(t.id)),
            ("PARENT_ID", lambda t: _opt_str(t.parent_id)),
            ("TITLE", lambda t: t.title),
            ("DESCRIPTION", lambda t: t.description),
            ("MARK", lambda t: None),
            ("PRIORITY", lambda t: str(t.priority)),
            ("MULTITASK", lambda t: "N"),
            ("NOT_VIEWED", lambda t: "N"),
            ("REPLICATE", lambda t: "N"),
            ("STAGE_ID", lambda t: "0"),
            ("CREATED_BY", lambda t: str(t.created_by)),
            ("CREATED_DATE", lambda t: d(t.created_date)),
            ("RESPONSIBLE_ID", lambda t: str(t.responsible_id)),
            ("CHANGED_BY", lambda t: str(t.changed_by)),
            ("CHANGED_DATE", lambda t: d(t.changed_date)),
            ("STATUS_CHANGED_BY", lambda t: _opt_str(t.status_changed_by)),
            ("CLOSED_BY", lambda t: _opt_str(t.closed_by)),
            ("CLOSED_DATE", lambda t: d(t.closed_date)),
            ("ACTIVITY_DATE", lambda t: d(self._activity(t))),
            ("DATE_START", lambda t: d(t.date_start)),
            ("DEADLINE", lambda t: d(t.deadline)),
            ("START_DATE_PLAN", lambda t: None),
            ("END_DATE_PLAN", lambda t: None),
            ("GUID", lambda t: t.guid),
            ("XML_ID", lambda t: None),
            ("COMMENTS_COUNT", lambda t: _opt_str(self._comment_count(t) or None)),
            ("ALLOW_CHANGE_DEADLINE", lambda t: "N"),
            ("ALLOW_TIME_TRACKING", lambda t: "N"),
            ("TASK_CONTROL", lambda t: "Y" if t.task_control else "N"),
            ("ADD_IN_REPORT", lambda t: "N"),
            ("TIME_ESTIMATE", lambda t: "0"),
            ("MATCH_WORK_TIME", lambda t: "N"),
            ("SITE_ID", lambda t: "s1"),
            ("DESCRIPTION_IN_BBCODE", lambda t: "Y"),
            ("STATUS", lambda t: str(t.status)),
            ("SUB_STATUS", lambda t: str(t.status)),
            ("STATUS_CHANGED_DATE", lambda t: d(t.status_changed_date)),
            ("GROUP_ID", lambda t: str(t.group_id)),
            ("FAVORITE", lambda t: "N"),
            ("AUDITORS", lambda t: [str(u) for u in t.auditors]),
            ("ACCOMPLICES", lambda t: [str(u) for u in t.accomplices]),
        ]
        self._known = {name for name, _ in self.fields}

    def _date(self, ts: float | None) -> str | None:
        return iso(ts, self.tz)

    def _comment_count(self, task: Task) -> int:
        return len(self.store.comments_by_task.get(task.id, []))

    def _activity(self, task: Task) -> float:
        comments = self.store.comments_of(task.id)
        chat = self.store.chat_for_task(task.id)
        messages = self.store.messages_of(chat.id) if chat else []
        return max(
            [task.changed_date, *(c.post_date for c in comments), *(m.date for m in messages)]
        )

    @staticmethod
    def normalize_select(select: Iterable[Any]) -> set[str]:
        names = {field_name(str(item)) for item in select if isinstance(item, str | int)}
        if "REAL_STATUS" in names:
            names.add("STATUS")
        return names

    def render(
        self,
        task: Task,
        select: set[str] | None = None,
        *,
        with_tags: bool = False,
        actions: dict[str, bool] | None = None,
    ) -> dict[str, Any]:
        """`select=None` (or containing `*`) gives every stored field; tags only
        when asked for (``with_tags`` and `TAGS` in `select`).  ``actions``: the
        caller's allowed actions, which `tasks.task.get` (and the methods that
        answer with the task) add whatever `select` says."""
        everything = select is None or "*" in select
        wanted: set[str] = set() if select is None else select
        out: dict[str, Any] = {}
        for name, getter in self.fields:
            if everything or name in wanted or name == "ID":
                out[camel(name)] = getter(task)
        for name, value in task.extra.items():
            if everything or name in wanted or ("UF_*" in wanted and name.startswith("UF_")):
                out[camel(name)] = value
        if everything:
            out["group"] = []
        if everything or "CREATED_BY" in wanted:
            out["creator"] = user_card(task.created_by)
        if everything or "RESPONSIBLE_ID" in wanted:
            out["responsible"] = user_card(task.responsible_id)
        if everything or "CHAT_ID" in wanted:
            # "returned by default" (tasks-task-get.md); a portal on the classic
            # card (before tasks 25.700) has no such field.
            chat_id = self.chat_id(task)
            if chat_id is not None:
                out["chatId"] = chat_id
        if with_tags and "TAGS" in wanted:
            out["tags"] = php_map(
                {
                    str(self.store.tag_id(tag)): {"id": self.store.tag_id(tag), "title": tag}
                    for tag in task.tags
                }
            )
        if actions is not None:
            out["action"] = actions
        return out

    def comment(self, comment: Comment) -> dict[str, Any]:
        return {
            "POST_MESSAGE_HTML": None,
            "ID": str(comment.id),
            "AUTHOR_ID": str(comment.author_id),
            "AUTHOR_NAME": f"User {comment.author_id}",
            "AUTHOR_EMAIL": "",
            "POST_DATE": self._date(comment.post_date),
            "POST_MESSAGE": comment.message,
            "ATTACHED_OBJECTS": {
                str(attachment_id): self._attachment(attachment_id, file_id)
                for attachment_id, file_id in zip(
                    comment.attachment_ids, comment.file_ids, strict=False
                )
            },
        }

    def _attachment(self, attachment_id: int, file_id: int) -> dict[str, str]:
        disk_file = self.store.files.get(file_id)
        url = f"/bitrix/tools/disk/uf.php?attachedId={attachment_id}&ncc=1"
        return {
            "ATTACHMENT_ID": str(attachment_id),
            "NAME": disk_file.name if disk_file else "",
            "SIZE": str(disk_file.size if disk_file else 0),
            "FILE_ID": str(file_id),
            "DOWNLOAD_URL": f"{url}&action=download",
            "VIEW_URL": f"{url}&action=show",
        }

    def state(self, task: Task) -> dict[str, Any]:
        """The control API's view: plain JSON types, tags, comments and chat included."""
        d = self._date
        chat = self.store.chat_for_task(task.id)
        messages = self.store.messages_of(chat.id) if chat else []
        return {
            "id": task.id,
            "title": task.title,
            "description": task.description,
            "responsible_id": task.responsible_id,
            "created_by": task.created_by,
            "changed_by": task.changed_by,
            "status": task.status,
            "parent_id": task.parent_id,
            "group_id": task.group_id,
            "priority": task.priority,
            "tags": list(task.tags),
            "accomplices": list(task.accomplices),
            "auditors": list(task.auditors),
            "task_control": task.task_control,
            "deadline": d(task.deadline),
            "created_date": d(task.created_date),
            "changed_date": d(task.changed_date),
            "status_changed_date": d(task.status_changed_date),
            "date_start": d(task.date_start),
            "closed_date": d(task.closed_date),
            "extra": dict(task.extra),
            # What people wrote: classic comments, then the chat's messages
            # (system messages only under "messages").
            "comments": [
                *(self.comment_state(c) for c in self.store.comments_of(task.id)),
                *(self.message_state(m) for m in messages if m.author_id),
            ],
            "chat_id": chat.id if chat else None,
            "messages": [self.message_state(m) for m in messages],
        }

    def comment_state(self, comment: Comment) -> dict[str, Any]:
        return {
            "id": comment.id,
            "task_id": comment.task_id,
            "author_id": comment.author_id,
            "text": comment.message,
            "post_date": self._date(comment.post_date),
            "new_card": False,
            "message_id": None,
            "files": list(comment.file_ids),
        }

    def message_state(self, message: Message) -> dict[str, Any]:
        """A chat message in the shape of a comment (``id`` is the message id)."""
        chat = self.store.chats.get(message.chat_id)
        return {
            "id": message.id,
            "task_id": chat.task_id if chat else None,
            "author_id": message.author_id,
            "text": message.text,
            "post_date": self._date(message.date),
            "new_card": True,
            "message_id": message.id,
            "files": list(message.file_ids),
        }
