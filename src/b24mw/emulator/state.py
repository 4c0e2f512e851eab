"""The portal's data: tasks, comments, tags; in memory, optionally in a JSON file."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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
    # Any other field the caller sent (UF_CRM_TASK, ...), kept verbatim by upper-case name.
    extra: dict[str, Any] = field(default_factory=dict)
    guid: str = field(default_factory=lambda: "{" + str(uuid.uuid4()) + "}")


@dataclass
class Comment:
    id: int
    task_id: int
    author_id: int
    post_date: float
    message: str
    # New task card (tasks 25.700+): the message lives in the task chat and the
    # event carries ID=0 plus MESSAGE_ID; commentitem.* cannot see it.
    new_card: bool = False
    message_id: int | None = None


class StateFileError(RuntimeError):
    pass


class Store:
    def __init__(self) -> None:
        self.tasks: dict[int, Task] = {}
        self.comments: dict[int, Comment] = {}
        self.comments_by_task: dict[int, list[int]] = {}
        self.tag_ids: dict[str, int] = {}
        self.next_task_id = 1
        self.next_comment_id = 1
        self.next_message_id = 1
        self.next_tag_id = 1
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
        self.dirty = True

    def put_comment(self, comment: Comment) -> None:
        self.comments[comment.id] = comment
        self.comments_by_task.setdefault(comment.task_id, []).append(comment.id)
        self.dirty = True

    def comments_of(self, task_id: int) -> list[Comment]:
        return [self.comments[c] for c in self.comments_by_task.get(task_id, [])]

    def clear(self) -> None:
        """Forget all data but keep the id counters: a portal never reuses an id."""
        self.tasks.clear()
        self.comments.clear()
        self.comments_by_task.clear()
        self.dirty = True

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "next_task_id": self.next_task_id,
            "next_comment_id": self.next_comment_id,
            "next_message_id": self.next_message_id,
            "next_tag_id": self.next_tag_id,
            "tag_ids": self.tag_ids,
            "tasks": [asdict(t) for t in self.tasks.values()],
            "comments": [asdict(c) for c in self.comments.values()],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Store:
        if data.get("version") != STATE_VERSION:
            raise StateFileError(f"unsupported state version {data.get('version')!r}")
        store = cls()
        store.next_task_id = int(data["next_task_id"])
        store.next_comment_id = int(data["next_comment_id"])
        store.next_message_id = int(data.get("next_message_id", 1))
        store.next_tag_id = int(data.get("next_tag_id", 1))
        store.tag_ids = {str(k): int(v) for k, v in data.get("tag_ids", {}).items()}
        for raw in data.get("tasks", []):
            store.tasks[int(raw["id"])] = Task(**raw)
        for raw in data.get("comments", []):
            store.put_comment(Comment(**raw))
        store.dirty = False
        return store

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
