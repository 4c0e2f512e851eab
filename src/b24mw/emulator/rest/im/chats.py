"""Task chats: the new task card (tasks 25.700+), where a task's comments are
messages of a chat linked to the task.

Rules (sources: `api-reference/tasks/tasks-new.md`, `tasks-task-get.md`,
`comment-item/*`, `comment-item/events-comment/on-task-comment-add.md`,
`chats/messages/im-dialog-messages-get.md`; the `im` module's
`Chat::getMessages` for what the page leaves open):

- The card is portal-wide (``task_card``: ``classic`` or ``new``).  On the new
  card every task has a chat; a person's comment and our
  ``task.commentitem.add`` become messages there, and ``ONTASKCOMMENTADD``
  fires with ``ID=0``, ``TASK_ID`` and ``MESSAGE_ID``.
- The portal writes system messages (``author_id: 0``) into the chat: the
  task was created, its status changed.  They fire no event.
- Who may read a chat: its members (the task's creator and responsible, and
  whoever has written in it) and portal administrators; the webhook user is
  an administrator in this emulator.
- A member's unread messages are the others' messages after the last one
  they read; writing a message reads the chat.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import timezone
from typing import Any

from b24mw.emulator.outgoing.dispatch import UNDEFINED, EventDispatcher
from b24mw.emulator.state.store import Chat, DiskFile, Message, Store, Task
from b24mw.emulator.wire.errors import core_error

CLASSIC = "classic"
NEW = "new"
CARDS = (CLASSIC, NEW)

# System messages a portal writes for status changes (texts as the English
# interface words them; the exact wording is the portal's, UNCONFIRMED).
_STATUS_TEXT = {
    1: "made the task new",
    2: "set the task to pending",
    3: "started the task",
    4: "sent the task for review",
    5: "completed the task",
    6: "deferred the task",
    7: "declined the task",
}


def mention(user_id: int) -> str:
    """How a system message names a user (BBCode, as the docs' example shows)."""
    return f"[USER={user_id} REPLACE]User {user_id}[/USER]"


class TaskChats:
    def __init__(
        self,
        store: Store,
        events: EventDispatcher,
        clock: Callable[[], float],
        tz: timezone,
        *,
        card: Callable[[], str],
        admins: Callable[[], set[int]],
        site: str,
    ) -> None:
        self.store = store
        self.events = events
        self.clock = clock
        self.tz = tz
        self._card = card
        self._admins = admins
        # The portal's address, for file links.
        self.site = site

    @property
    def new_card(self) -> bool:
        return self._card() == NEW

    # ------------------------------------------------------------ chats

    def chat_id(self, task: Task) -> int | None:
        """What ``tasks.task.get`` shows as ``chatId``: only on the new card."""
        if not self.new_card:
            return None
        return self.chat_for(task).id

    def chat_for(self, task: Task) -> Chat:
        chat = self.store.chat_for_task(task.id)
        if chat is None:
            chat = Chat(id=self.store.new_chat_id(), task_id=task.id)
            for member in {task.created_by, task.responsible_id}:
                chat.last_read[str(member)] = 0
            self.store.put_chat(chat)
            self._system(chat, f"{mention(task.created_by)} created the task")
        return chat

    def open_all(self) -> None:
        """The portal switched to the new card: every task gets its chat."""
        for task in list(self.store.tasks.values()):
            self.chat_for(task)

    def task_added(self, task: Task) -> None:
        if self.new_card:
            self.chat_for(task)

    def status_changed(self, task: Task, status: int, actor: int) -> None:
        if not self.new_card:
            return
        text = _STATUS_TEXT.get(status, f"set the task to status {status}")
        self._system(self.chat_for(task), f"{mention(actor)} {text}")

    def _system(self, chat: Chat, text: str) -> Message:
        message = Message(
            id=self.store.new_message_id(),
            chat_id=chat.id,
            author_id=0,
            date=self.clock(),
            text=text,
        )
        self.store.put_message(message)
        return message

    # --------------------------------------------------------- messages

    def post(
        self,
        task_id: int,
        author_id: int,
        text: str,
        *,
        file_ids: Sequence[int] = (),
        date: float | None = None,
        with_uuid: bool = True,
    ) -> Message:
        """A comment on the new card: a chat message, then ``ONTASKCOMMENTADD``
        with ``ID=0``.  The same refusals as a classic comment."""
        task = self.store.tasks.get(task_id)
        if task is None:
            raise core_error("Insufficient permissions to add a comment")
        if not text.strip() and not file_ids:
            raise core_error("Comment text not specified")
        chat = self.chat_for(task)
        message = Message(
            id=self.store.new_message_id(),
            chat_id=chat.id,
            author_id=author_id,
            date=self.clock() if date is None else date,
            text=text,
            file_ids=list(file_ids),
            uuid=str(uuid.uuid4()) if with_uuid else None,
            params={"FILE_ID": list(file_ids)} if file_ids else {},
        )
        self.store.put_message(message)
        chat.last_read[str(author_id)] = message.id
        self.events.emit(
            "ONTASKCOMMENTADD",
            {
                "FIELDS_BEFORE": UNDEFINED,
                "FIELDS_AFTER": {"ID": 0, "TASK_ID": task_id, "MESSAGE_ID": message.id},
                "IS_ACCESSIBLE_BEFORE": UNDEFINED,
                "IS_ACCESSIBLE_AFTER": UNDEFINED,
            },
        )
        return message

    def can_read(self, chat: Chat, user_id: int) -> bool:
        return str(user_id) in chat.last_read or user_id in self._admins()

    def unread(self, chat: Chat, user_id: int) -> tuple[int | None, int]:
        """(the last message the user has read, how many others' messages
        came after it); ``None`` for a user with no relation to the chat."""
        last = chat.last_read.get(str(user_id))
        if last is None:
            return None, 0
        count = sum(
            1 for m in self.store.messages_of(chat.id) if m.id > last and m.author_id != user_id
        )
        return last, count

    # ------------------------------------------------------------ files

    def upload(self, name: str, size: int, author_id: int) -> DiskFile:
        disk_file = DiskFile(
            id=self.store.new_file_id(),
            name=name,
            size=size,
            author_id=author_id,
            created=self.clock(),
        )
        self.store.put_file(disk_file)
        return disk_file

    def file_ids(self, specs: Any, author_id: int) -> list[int]:
        """The person API's ``files``: ``{"name", "size"?}`` uploads a new file,
        ``{"id"}`` attaches one already on Drive.  ``ValueError`` when a spec
        is neither or names no file."""
        if specs is None:
            return []
        if not isinstance(specs, list):
            raise ValueError("files must be a list")
        found: list[int] = []
        for spec in specs:
            if not isinstance(spec, dict):
                raise ValueError('each file is {"name": ...} or {"id": ...}')
            if "id" in spec:
                file_id = spec["id"]
                if isinstance(file_id, bool) or not isinstance(file_id, int):
                    raise ValueError("a file id must be an integer")
                if file_id not in self.store.files:
                    raise ValueError(f"no file {file_id} on Drive")
                found.append(file_id)
                continue
            name, size = spec.get("name"), spec.get("size", 1024)
            if not isinstance(name, str) or not name.strip():
                raise ValueError("a new file needs a name")
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise ValueError("a file size is a non-negative integer")
            found.append(self.upload(name.strip(), size, author_id).id)
        return found
