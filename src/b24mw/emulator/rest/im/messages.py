"""`im.dialog.messages.get`: reading a chat, as the `im` module does it.

Source: `api-reference/chats/messages/im-dialog-messages-get.md`; where the
page is silent, the `im` module's REST handler and `Chat::getMessages`:

- ``DIALOG_ID`` is ``chat<id>``, ``sg<id>`` or a user id; anything else is
  400 ``DIALOG_ID_EMPTY``.  A dialog the caller may not read (or that does
  not exist) is 403 ``ACCESS_ERROR``.
- ``FIRST_ID`` (digits only, else 400 ``FIRST_ID_STRING``): the ``LIMIT``
  messages right after it, oldest first.  Otherwise ``LAST_ID`` (digits only,
  else ``LAST_ID_STRING``): the ``LIMIT`` messages right before it (``0``:
  the newest), newest first.  ``FIRST_ID`` wins when both are given.
- ``LIMIT``: default 20, at most 50; PHP's ``intval`` reads it, and a limit
  of 0 or less puts no limit on the query at all.
- With neither ``FIRST_ID`` nor ``LAST_ID`` a member with unread messages
  gets more than ``LIMIT``: up to ``LIMIT`` plus the unread count, or — when
  more are unread than ``LIMIT`` — the ``LIMIT`` messages after the last one
  read (newest first) followed by ``LIMIT`` older ones.
- The answer: ``chat_id``, ``messages`` (``author_id: 0`` for system
  messages; ``params`` an empty list or ``{"FILE_ID": [...]}``), ``users``
  (the authors), ``files`` (the files those messages carry).
"""

from __future__ import annotations

import re
from typing import Any

from b24mw.emulator.rest.im.chats import TaskChats
from b24mw.emulator.rest.methodkit import Args, Handler, MethodContext, MethodResult, named
from b24mw.emulator.state.store import Chat, DiskFile, Message
from b24mw.emulator.wire.dates import iso
from b24mw.emulator.wire.errors import B24Error

REST_LIMIT_DEFAULT = 20
REST_LIMIT_MAX = 50
# Chat::getMessages caps what it is given at 100 (the REST layer already at 50).
QUERY_LIMIT_MAX = 100
_DIALOG = re.compile(r"(?:chat|sg)?(\d+)", re.IGNORECASE)
_CHAT = re.compile(r"chat(\d+)", re.IGNORECASE)
_DIGITS = re.compile(r"\d+")
_PHP_INT = re.compile(r"\s*([+-]?\d+)")
_IMAGES = frozenset({"jpg", "jpeg", "png", "gif", "webp", "bmp", "heic"})


def _error(code: str, description: str, status: int = 400) -> B24Error:
    return B24Error(code, description, status)


def php_intval(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        match = _PHP_INT.match(value)
        return int(match.group(1)) if match else 0
    return 0


def _digits_only(value: Any) -> bool:
    """``preg_match('/^\\d{1,}$/', $value)`` as PHP sees the value."""
    if isinstance(value, bool):
        return value  # true is "1", false is ""
    if isinstance(value, int):
        return value >= 0
    return isinstance(value, str) and _DIGITS.fullmatch(value) is not None


def _chat(ctx: MethodContext, chats: TaskChats, dialog_id: Any) -> Chat:
    if not isinstance(dialog_id, str | int) or isinstance(dialog_id, bool):
        raise _error("DIALOG_ID_EMPTY", "Dialog ID can't be empty")
    text = str(dialog_id).strip()
    if not _DIALOG.fullmatch(text):
        raise _error("DIALOG_ID_EMPTY", "Dialog ID can't be empty")
    match = _CHAT.fullmatch(text)
    chat = ctx.store.chats.get(int(match.group(1))) if match else None
    # Group chats and private dialogs do not exist in this portal.
    if chat is None or not chats.can_read(chat, ctx.actor):
        raise _error("ACCESS_ERROR", "You do not have access to the specified dialog", 403)
    return chat


def _page(
    messages: list[Message], *, first_id: int | None, last_id: int | None, limit: int
) -> list[Message]:
    if first_id is not None:
        chosen = [m for m in messages if first_id <= 0 or m.id > first_id]
    else:
        chosen = [m for m in reversed(messages) if not last_id or m.id < last_id]
    return chosen[:limit] if limit > 0 else chosen


def dialog_messages_get(ctx: MethodContext, args: Args) -> MethodResult:
    params = {key.upper(): value for key, value in named(args).items()}
    chats: TaskChats = ctx.service.chats
    chat = _chat(ctx, chats, params.get("DIALOG_ID"))
    first_id: int | None = None
    last_id: int | None = None
    if "FIRST_ID" in params:
        if not _digits_only(params["FIRST_ID"]):
            raise _error("FIRST_ID_STRING", "First ID can't be string")
        first_id = php_intval(params["FIRST_ID"])
    elif "LAST_ID" in params:
        if not _digits_only(params["LAST_ID"]):
            raise _error("LAST_ID_STRING", "Last ID can't be string")
        last_id = max(0, php_intval(params["LAST_ID"]))
    limit = REST_LIMIT_DEFAULT
    if "LIMIT" in params:
        limit = min(php_intval(params["LIMIT"]), REST_LIMIT_MAX)
    limit = min(limit, QUERY_LIMIT_MAX)

    history = ctx.store.messages_of(chat.id)
    last_read, unread = chats.unread(chat, ctx.actor)
    tail: list[Message] = []
    ascending = first_id is not None
    if first_id is None and last_id is None and unread > 0:
        assert last_read is not None
        if unread > limit:
            # Start from the first unread message; the page comes out newest
            # first, followed by the messages before the first unread one.
            page = list(reversed(_page(history, first_id=last_read, last_id=None, limit=limit)))
            first_unread = min(m.id for m in history if m.id > last_read)
            tail = _page(history, first_id=None, last_id=first_unread, limit=limit)
            return MethodResult(_answer(ctx, chats, chat, page, tail, ascending=False))
        limit += unread
    page = _page(history, first_id=first_id, last_id=last_id, limit=limit)
    return MethodResult(_answer(ctx, chats, chat, page, tail, ascending=ascending))


def _answer(
    ctx: MethodContext,
    chats: TaskChats,
    chat: Chat,
    page: list[Message],
    tail: list[Message],
    *,
    ascending: bool,
) -> dict[str, Any]:
    last_read = chat.last_read.get(str(ctx.actor))
    users: dict[int, dict[str, Any]] = {}
    file_ids: list[int] = []
    for message in page:
        if message.author_id and message.author_id not in users:
            users[message.author_id] = im_user(message.author_id)
        file_ids += [f for f in message.file_ids if f not in file_ids]
    files = [im_file(chats, chat, ctx.store.files[f]) for f in file_ids if f in ctx.store.files]
    return {
        "chat_id": chat.id,
        "messages": [_message(ctx, m, last_read) for m in [*page, *tail]],
        "users": list(users.values()),
        "files": files if ascending else list(reversed(files)),
    }


def _message(ctx: MethodContext, message: Message, last_read: int | None) -> dict[str, Any]:
    return {
        "id": message.id,
        "chat_id": message.chat_id,
        "author_id": message.author_id,
        "date": iso(message.date, ctx.tz),
        "text": message.text,
        "unread": last_read is not None and last_read < message.id,
        "uuid": message.uuid,
        "replaces": [],
        # PHP's json_encode: an empty array is [].
        "params": dict(message.params) if message.params else [],
        "disappearing_date": None,
    }


def im_user(user_id: int) -> dict[str, Any]:
    return {
        "id": user_id,
        "active": True,
        "name": f"User {user_id}",
        "first_name": "User",
        "last_name": str(user_id),
        "work_position": "",
        "color": "#4ba984",
        "avatar": "",
        "avatar_hr": "",
        "gender": "M",
        "birthday": "",
        "extranet": False,
        "network": False,
        "bot": False,
        "connector": False,
        "external_auth_id": "default",
        "status": "online",
        "idle": False,
        "last_activity_date": False,
        "mobile_last_date": False,
        "desktop_last_date": False,
        "absent": False,
        "departments": [1],
        "phones": False,
        "bot_data": None,
        "type": "user",
        "website": "",
        "email": f"user{user_id}@emulator.invalid",
    }


def im_file(chats: TaskChats, chat: Chat, disk_file: DiskFile) -> dict[str, Any]:
    extension = disk_file.name.rsplit(".", 1)[-1].lower() if "." in disk_file.name else ""
    is_image = extension in _IMAGES
    download = (
        f"{chats.site}/bitrix/services/main/ajax.php?action=disk.api.file.download"
        f"&fileId={disk_file.id}"
    )
    entry: dict[str, Any] = {
        "id": disk_file.id,
        "chatId": chat.id,
        "date": iso(disk_file.created, chats.tz),
        "type": "image" if is_image else "file",
        "name": disk_file.name,
        "extension": extension,
        "size": disk_file.size,
        "status": "done",
        "progress": 100,
        "authorId": disk_file.author_id,
        "authorName": f"User {disk_file.author_id}",
        "urlPreview": download if is_image else "",
        "urlShow": download.replace("file.download", "file.showImage") if is_image else "",
        "urlDownload": download,
        "isTranscribable": False,
        "isVideoNote": False,
        "isVoiceNote": False,
    }
    if is_image:
        entry["image"] = {"height": 960, "width": 1280}
    return entry


IM_METHODS: dict[str, Handler] = {
    "im.dialog.messages.get": dialog_messages_get,
}
