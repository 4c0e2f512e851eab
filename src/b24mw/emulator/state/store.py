"""The portal's data: tasks, comments, tags, task chats, Drive files; in memory,
optionally in a JSON file."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from b24mw.emulator.state.crm import CrmStore

STATE_VERSION = 1


@dataclass
class Task:
    id: int
    title: str
    responsible_id: int
    created_by: int
    created_date: float
    changed_date: float
    changed_by: int
    status: int = 2
    status_changed_date: float | None = None
    status_changed_by: int | None = None
    description: str = ""
    parent_id: int | None = None
    group_id: int = 0
    priority: int = 1
    deadline: float | None = None
    date_start: float | None = None
    closed_date: float | None = None
    closed_by: int | None = None
    tags: list[str] = field(default_factory=list)
    # Participants who work on the task, and observers who only watch it.
    accomplices: list[int] = field(default_factory=list)
    auditors: list[int] = field(default_factory=list)
    # TASK_CONTROL: a completion by anyone but the creator awaits review (status 4).
    task_control: bool = False
    # Any other field the caller sent (UF_CRM_TASK, ...), kept verbatim by upper-case name.
    extra: dict[str, Any] = field(default_factory=dict)
    guid: str = field(default_factory=lambda: "{" + str(uuid.uuid4()) + "}")


@dataclass
class Comment:
    """A classic task comment (a forum message), read by ``task.commentitem.*``."""

    id: int
    task_id: int
    author_id: int
    post_date: float
    message: str
    # Drive files attached to it, each through its own attachment id.
    file_ids: list[int] = field(default_factory=list)
    attachment_ids: list[int] = field(default_factory=list)


@dataclass
class DiskFile:
    """A file on the portal's Drive: what comments and chat messages attach."""

    id: int
    name: str
    size: int
    author_id: int
    created: float


@dataclass
class Chat:
    """A task's chat (the new task card, tasks 25.700+): its comments are messages here."""

    id: int
    task_id: int
    # The users related to the chat and the last message each has read
    # (writing a message reads the chat); JSON keys are strings.
    last_read: dict[str, int] = field(default_factory=dict)


@dataclass
class Message:
    id: int
    chat_id: int
    author_id: int  # 0: a system message ("the task is completed", ...)
    date: float
    text: str
    file_ids: list[int] = field(default_factory=list)
    uuid: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class OpenLineSession:
    """One open-line session: a customer's conversation in a line's chat,
    from its start until an operator (or the line's timeout) closes it."""

    id: int
    line_id: int
    connector: str
    chat_id: int
    client_user_id: int
    client_name: str
    # The CRM entity the session is bound to, "D_12" / "L_5" style.
    crm_entity: str
    activity_id: int
    opened: float
    closed: float | None = None
    operator_id: int | None = None


@dataclass
class Activity:
    """The CRM activity a line with CRM integration creates for each session
    (``PROVIDER_ID`` ``IMOPENLINES_SESSION``)."""

    id: int
    owner_type_id: int
    owner_id: int
    provider_id: str
    provider_type_id: str
    associated_entity_id: int
    subject: str
    created: float
    last_updated: float
    responsible_id: int
    completed: bool = False


class StateFileError(RuntimeError):
    pass


class Store:
    def __init__(self) -> None:
        self.tasks: dict[int, Task] = {}
        self.comments: dict[int, Comment] = {}
        self.comments_by_task: dict[int, list[int]] = {}
        self.tag_ids: dict[str, int] = {}
        self.chats: dict[int, Chat] = {}
        self.chat_of_task: dict[int, int] = {}
        self.messages: dict[int, Message] = {}
        self.messages_by_chat: dict[int, list[int]] = {}
        self.files: dict[int, DiskFile] = {}
        self.ol_sessions: dict[int, OpenLineSession] = {}
        self.activities: dict[int, Activity] = {}
        self.crm = CrmStore()
        self.next_task_id = 1
        self.next_comment_id = 1
        self.next_tag_id = 1
        # Chats, messages, files and attachments count in id spaces of their own,
        # far from task and comment ids (as on a portal, where the general chat
        # and people's chats came first): mixing them up cannot pass by luck.
        self.next_chat_id = 1001
        self.next_message_id = 5001
        self.next_file_id = 9001
        self.next_attachment_id = 301
        # Open-line sessions, CRM activities, leads and the connector users
        # (the customers) each count on their own too.
        self.next_session_id = 401
        self.next_activity_id = 2001
        self.next_lead_id = 601
        self.next_client_id = 1501
        self.dirty = False

    def new_task_id(self) -> int:
        value = self.next_task_id
        self.next_task_id += 1
        return value

    def new_comment_id(self) -> int:
        value = self.next_comment_id
        self.next_comment_id += 1
        return value

    def new_message_id(self) -> int:
        value = self.next_message_id
        self.next_message_id += 1
        return value

    def new_chat_id(self) -> int:
        value = self.next_chat_id
        self.next_chat_id += 1
        return value

    def new_file_id(self) -> int:
        value = self.next_file_id
        self.next_file_id += 1
        return value

    def new_attachment_id(self) -> int:
        value = self.next_attachment_id
        self.next_attachment_id += 1
        return value

    def new_id(self, counter: str) -> int:
        """The next id of ``counter`` (``session``, ``activity``, ``lead``, ``client``)."""
        name = f"next_{counter}_id"
        value: int = getattr(self, name)
        setattr(self, name, value + 1)
        return value

    def put_session(self, session: OpenLineSession) -> None:
        self.ol_sessions[session.id] = session
        self.dirty = True

    def put_activity(self, activity: Activity) -> None:
        self.activities[activity.id] = activity
        self.dirty = True

    def session_of_chat(self, chat_id: int) -> OpenLineSession | None:
        """The chat's latest session."""
        found = [s for s in self.ol_sessions.values() if s.chat_id == chat_id]
        return max(found, key=lambda s: s.id) if found else None

    def tag_id(self, name: str) -> int:
        key = name.casefold()
        tag_id = self.tag_ids.get(key)
        if tag_id is None:
            tag_id = self.tag_ids[key] = self.next_tag_id
            self.next_tag_id += 1
        return tag_id

    def put_task(self, task: Task) -> None:
        self.tasks[task.id] = task
        self.dirty = True

    def drop_task(self, task_id: int) -> None:
        self.tasks.pop(task_id, None)
        for comment_id in self.comments_by_task.pop(task_id, []):
            self.comments.pop(comment_id, None)
        chat_id = self.chat_of_task.pop(task_id, None)
        if chat_id is not None:
            self.chats.pop(chat_id, None)
            for message_id in self.messages_by_chat.pop(chat_id, []):
                self.messages.pop(message_id, None)
        self.dirty = True

    def put_comment(self, comment: Comment) -> None:
        self.comments[comment.id] = comment
        self.comments_by_task.setdefault(comment.task_id, []).append(comment.id)
        self.dirty = True

    def comments_of(self, task_id: int) -> list[Comment]:
        return [self.comments[c] for c in self.comments_by_task.get(task_id, [])]

    def put_chat(self, chat: Chat) -> None:
        self.chats[chat.id] = chat
        self.chat_of_task[chat.task_id] = chat.id
        self.dirty = True

    def chat_for_task(self, task_id: int) -> Chat | None:
        chat_id = self.chat_of_task.get(task_id)
        return self.chats.get(chat_id) if chat_id is not None else None

    def put_message(self, message: Message) -> None:
        self.messages[message.id] = message
        self.messages_by_chat.setdefault(message.chat_id, []).append(message.id)
        self.dirty = True

    def messages_of(self, chat_id: int) -> list[Message]:
        """Oldest first (ids only grow)."""
        return [self.messages[m] for m in self.messages_by_chat.get(chat_id, [])]

    def put_file(self, disk_file: DiskFile) -> None:
        self.files[disk_file.id] = disk_file
        self.dirty = True

    def clear(self) -> None:
        """Forget all data but keep the id counters: a portal never reuses an id."""
        self.tasks.clear()
        self.comments.clear()
        self.comments_by_task.clear()
        self.chats.clear()
        self.chat_of_task.clear()
        self.messages.clear()
        self.messages_by_chat.clear()
        self.files.clear()
        self.ol_sessions.clear()
        self.activities.clear()
        self.crm.clear()
        self.dirty = True

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "next_task_id": self.next_task_id,
            "next_comment_id": self.next_comment_id,
            "next_message_id": self.next_message_id,
            "next_tag_id": self.next_tag_id,
            "next_chat_id": self.next_chat_id,
            "next_file_id": self.next_file_id,
            "next_attachment_id": self.next_attachment_id,
            "next_session_id": self.next_session_id,
            "next_activity_id": self.next_activity_id,
            "next_lead_id": self.next_lead_id,
            "next_client_id": self.next_client_id,
            "tag_ids": self.tag_ids,
            "tasks": [asdict(t) for t in self.tasks.values()],
            "comments": [asdict(c) for c in self.comments.values()],
            "chats": [asdict(c) for c in self.chats.values()],
            "messages": [asdict(m) for m in self.messages.values()],
            "files": [asdict(f) for f in self.files.values()],
            "ol_sessions": [asdict(s) for s in self.ol_sessions.values()],
            "activities": [asdict(a) for a in self.activities.values()],
            "crm": self.crm.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Store:
        if data.get("version") != STATE_VERSION:
            raise StateFileError(f"unsupported state version {data.get('version')!r}")
        store = cls()
        store.next_task_id = int(data["next_task_id"])
        store.next_comment_id = int(data["next_comment_id"])
        store.next_message_id = int(data.get("next_message_id", store.next_message_id))
        store.next_tag_id = int(data.get("next_tag_id", 1))
        store.next_chat_id = int(data.get("next_chat_id", store.next_chat_id))
        store.next_file_id = int(data.get("next_file_id", store.next_file_id))
        store.next_attachment_id = int(data.get("next_attachment_id", store.next_attachment_id))
        for counter in ("session", "activity", "lead", "client"):
            name = f"next_{counter}_id"
            setattr(store, name, int(data.get(name, getattr(store, name))))
        store.tag_ids = {str(k): int(v) for k, v in data.get("tag_ids", {}).items()}
        for raw in data.get("tasks", []):
            store.tasks[int(raw["id"])] = Task(**raw)
        for raw in data.get("chats", []):
            store.put_chat(Chat(**raw))
        for raw in data.get("messages", []):
            store.put_message(Message(**raw))
        for raw in data.get("files", []):
            store.put_file(DiskFile(**raw))
        for raw in data.get("ol_sessions", []):
            store.put_session(OpenLineSession(**raw))
        for raw in data.get("activities", []):
            store.put_activity(Activity(**raw))
        for raw in data.get("comments", []):
            if raw.pop("new_card", False):
                store._adopt_legacy_message(raw)
                continue
            raw.pop("message_id", None)
            store.put_comment(Comment(**raw))
        if isinstance(data.get("crm"), dict):
            store.crm = CrmStore.from_json(data["crm"])
        store.dirty = False
        return store

    def _adopt_legacy_message(self, raw: dict[str, Any]) -> None:
        """Files written before task chats existed kept a new-card message as a
        comment flagged ``new_card``: it becomes a message of the task's chat."""
        task_id = int(raw["task_id"])
        chat = self.chat_for_task(task_id)
        if chat is None:
            chat = Chat(id=self.new_chat_id(), task_id=task_id)
            self.put_chat(chat)
        message_id = raw.get("message_id")
        self.put_message(
            Message(
                id=int(message_id) if message_id else self.new_message_id(),
                chat_id=chat.id,
                author_id=int(raw["author_id"]),
                date=float(raw["post_date"]),
                text=str(raw["message"]),
            )
        )

    def save(self, path: Path) -> None:
        """Write to a sibling temp file, fsync, then rename: never a torn state file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(self.to_json(), fh, ensure_ascii=False, separators=(",", ":"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        self.dirty = False

    @classmethod
    def load(cls, path: Path) -> Store:
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls.from_json(data)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StateFileError(f"cannot read emulator state {path}: {exc}") from exc
