"""Open lines: customer sessions, their chats and messages, and the CRM
activity each session creates.

Sources (`bitrix24/b24restdocs`, `api-reference/imopenlines/openlines/`):
`sessions/imopenlines-dialog-get.md`, `sessions/imopenlines-session-history-get.md`,
`chats/imopenlines-crm-chat-get.md`, `events/on-session-start.md`,
`events/on-open-line-message-add.md`; the activity from
`crm/timeline/activities/activity-base/crm-activity-get.md` and its events.

- A session lives in a chat (``type`` ``lines``, ``entity_id``
  ``connector|line|chat|user``); ``entity_data_1``'s sixth field is the
  session id.  Messages share the portal's message id space.
- Each session on a line with CRM integration (every line here) creates a
  CRM activity (``PROVIDER_ID`` ``IMOPENLINES_SESSION``,
  ``ASSOCIATED_ENTITY_ID`` = session id) bound to the session's CRM entity
  (a new lead when none is given).  ``ONCRMACTIVITYADD`` fires when the
  session starts and ``ONCRMACTIVITYUPDATE`` when it closes
  (``COMPLETED=Y``); a message alone fires no CRM event (the stricter
  reading: the docs promise nothing per message).
- ``OnSessionStart/Finish`` and ``OnOpenLineMessageAdd`` reach installed
  applications only (``app_only``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timezone
from typing import Any

from b24mw.emulator.outgoing.dispatch import EventDispatcher
from b24mw.emulator.rest.im.messages import im_user
from b24mw.emulator.rest.methodkit import Args, Handler, MethodContext, MethodResult, named
from b24mw.emulator.rest.tasks.service import as_int
from b24mw.emulator.state.store import Activity, Message, OpenLineSession, Store
from b24mw.emulator.wire.dates import iso
from b24mw.emulator.wire.errors import B24Error

PROVIDER_ID = "IMOPENLINES_SESSION"
# CRM owner types (`crm/data-types.md`): 1 lead, 2 deal, 3 contact, 4 company.
OWNER_TYPES = {"L": 1, "D": 2, "C": 3, "CO": 4}
CRM_TYPE_NAMES = {1: "LEAD", 2: "DEAL", 3: "CONTACT", 4: "COMPANY"}
_CRM_ENTITY = re.compile(r"(L|D|C|CO)_(\d+)")
# The line's chat bot (welcome messages, forms): one user of its own.
BOT_USER_ID = 91
SENDERS = ("client", "operator", "bot", "system")


def parse_crm_entity(value: str) -> tuple[int, int]:
    """``"D_12"`` -> (2, 12); ValueError for anything else."""
    match = _CRM_ENTITY.fullmatch(value.strip().upper())
    if not match:
        raise ValueError("crm_entity must look like D_12, L_5, C_3 or CO_4")
    return OWNER_TYPES[match.group(1)], int(match.group(2))


class OpenLines:
    def __init__(
        self,
        store: Store,
        events: EventDispatcher,
        clock: Callable[[], float],
        tz: timezone,
        *,
        operator_id: int,
    ) -> None:
        self.store = store
        self.events = events
        self.clock = clock
        self.tz = tz
        self.operator_id = operator_id

    def start(
        self, line_id: int, connector: str, client_name: str, crm_entity: str | None
    ) -> OpenLineSession:
        store = self.store
        now = self.clock()
        if crm_entity:
            owner_type, owner_id = parse_crm_entity(crm_entity)
        else:
            owner_type, owner_id = 1, store.new_id("lead")
        session_id = store.new_id("session")
        activity = Activity(
            id=store.new_id("activity"),
            owner_type_id=owner_type,
            owner_id=owner_id,
            provider_id=PROVIDER_ID,
            provider_type_id=str(line_id),
            associated_entity_id=session_id,
            subject=f"{client_name} - open line {line_id}",
            created=now,
            last_updated=now,
            responsible_id=self.operator_id,
        )
        session = OpenLineSession(
            id=session_id,
            line_id=line_id,
            connector=connector,
            chat_id=store.new_chat_id(),
            client_user_id=store.new_id("client"),
            client_name=client_name,
            crm_entity=f"{_prefix(owner_type)}_{owner_id}",
            activity_id=activity.id,
            opened=now,
        )
        store.put_activity(activity)
        store.put_session(session)
        self.events.emit("ONCRMACTIVITYADD", {"FIELDS": {"ID": str(activity.id)}})
        self.events.emit("ONSESSIONSTART", self._app_data(session), app_only=True)
        return session

    def post(self, session: OpenLineSession, sender: str, text: str) -> Message:
        if session.closed is not None:
            raise ValueError("the session is closed")
        author = {
            "client": session.client_user_id,
            "operator": session.operator_id or self.operator_id,
            "bot": BOT_USER_ID,
            "system": 0,
        }[sender]
        if sender == "operator":
            session.operator_id = author
        message = Message(
            id=self.store.new_message_id(),
            chat_id=session.chat_id,
            author_id=author,
            date=self.clock(),
            text=text,
        )
        self.store.put_message(message)
        data = self._app_data(session)
        data["DATA"][0]["message"] = {
            "id": message.id,
            "date": "",
            "text": text,
            "files": [],
            "attach": "",
            "system": "Y" if author == 0 else "N",
            "user_id": author,
        }
        self.events.emit("ONOPENLINEMESSAGEADD", data, app_only=True)
        return message

    def close(self, session: OpenLineSession) -> OpenLineSession:
        if session.closed is not None:
            return session
        now = self.clock()
        # The line writes its closing notice as a system message.
        self.store.put_message(
            Message(
                id=self.store.new_message_id(),
                chat_id=session.chat_id,
                author_id=0,
                date=now,
                text="[b]The conversation is finished[/b]",
            )
        )
        session.closed = now
        activity = self.store.activities[session.activity_id]
        activity.completed = True
        activity.last_updated = now
        self.store.dirty = True
        self.events.emit("ONCRMACTIVITYUPDATE", {"FIELDS": {"ID": str(activity.id)}})
        self.events.emit("ONSESSIONFINISH", self._app_data(session), app_only=True)
        return session

    def _app_data(self, session: OpenLineSession) -> dict[str, Any]:
        return {
            "DATA": [
                {
                    "connector": {
                        "connector_id": session.connector,
                        "line_id": session.line_id,
                        "chat_id": session.chat_id,
                        "user_id": session.client_user_id,
                    },
                    "session": {
                        "id": session.id,
                        "closed": "Y" if session.closed is not None else "N",
                        "parent_id": 0,
                        "close_term": 60,
                    },
                    "chat": {"id": session.chat_id},
                    "user": {"id": session.client_user_id},
                }
            ]
        }

    def state(self, session: OpenLineSession) -> dict[str, Any]:
        """The control API's view of a session."""
        return {
            "id": session.id,
            "line_id": session.line_id,
            "connector": session.connector,
            "chat_id": session.chat_id,
            "client_user_id": session.client_user_id,
            "client_name": session.client_name,
            "user_code": user_code(session),
            "crm_entity": session.crm_entity,
            "activity_id": session.activity_id,
            "status": "closed" if session.closed is not None else "open",
            "messages": [
                {"id": m.id, "author_id": m.author_id, "text": m.text}
                for m in self.store.messages_of(session.chat_id)
            ],
        }


def _prefix(owner_type: int) -> str:
    return {v: k for k, v in OWNER_TYPES.items()}[owner_type]


def user_code(session: OpenLineSession) -> str:
    return f"{session.connector}|{session.line_id}|{session.chat_id}|{session.client_user_id}"


def _params(args: Args) -> dict[str, Any]:
    return {key.upper(): value for key, value in named(args).items()}


def _dialog_error() -> B24Error:
    return B24Error("ACCESS_ERROR", "You do not have access to the specified dialog", 400)


def _find_dialog(store: Store, params: dict[str, Any]) -> OpenLineSession:
    session: OpenLineSession | None = None
    if params.get("CHAT_ID") not in (None, ""):
        chat_id = as_int(params["CHAT_ID"])
        session = store.session_of_chat(chat_id) if chat_id else None
    elif params.get("DIALOG_ID") not in (None, ""):
        match = re.fullmatch(r"chat(\d+)", str(params["DIALOG_ID"]).strip(), re.IGNORECASE)
        session = store.session_of_chat(int(match.group(1))) if match else None
    elif params.get("SESSION_ID") not in (None, ""):
        session_id = as_int(params["SESSION_ID"])
        session = store.ol_sessions.get(session_id) if session_id else None
    elif params.get("USER_CODE") not in (None, ""):
        code = str(params["USER_CODE"])
        found = [s for s in store.ol_sessions.values() if user_code(s) == code]
        session = max(found, key=lambda s: s.id) if found else None
    if session is None:
        raise _dialog_error()
    return session


def _entity_data(session: OpenLineSession) -> tuple[str, str]:
    owner_type, owner_id = parse_crm_entity(session.crm_entity)
    type_name = CRM_TYPE_NAMES[owner_type]
    data_1 = f"Y|{type_name}|{owner_id}|N|N|{session.id}|{int(session.opened)}|0|0|0"
    ids = {name: 0 for name in ("LEAD", "COMPANY", "CONTACT", "DEAL")}
    ids[type_name] = owner_id
    data_2 = "|".join(f"{name}|{value}" for name, value in ids.items())
    return data_1, data_2


def dialog_get(ctx: MethodContext, args: Args) -> MethodResult:
    store = ctx.store
    session = _find_dialog(store, _params(args))
    messages = store.messages_of(session.chat_id)
    last = messages[-1].id if messages else 0
    data_1, data_2 = _entity_data(session)
    return MethodResult(
        {
            "id": session.chat_id,
            "parent_chat_id": 0,
            "parent_message_id": 0,
            "name": f"{session.client_name} - open line {session.line_id}",
            "description": None,
            "owner": session.operator_id or 0,
            "extranet": False,
            "avatar": "",
            "color": "#58cc47",
            "type": "lines",
            "counter": 0,
            "user_counter": 0,
            "message_count": len(messages),
            "unread_id": 0,
            "last_message_id": last,
            "last_id": last,
            "marked_id": 0,
            "disk_folder_id": 0,
            "entity_type": "LINES",
            "entity_id": user_code(session),
            "entity_data_1": data_1,
            "entity_data_2": data_2,
            "entity_data_3": "N",
            "mute_list": [],
            "date_create": iso(session.opened, ctx.tz),
            "message_type": "L",
            "public": "",
            "role": "member",
            "entity_link": {"type": "LINES", "url": "", "id": user_code(session)},
            "manager_list": [session.operator_id] if session.operator_id else [],
            "dialog_id": f"chat{session.chat_id}",
        }
    )


def _history_user(session: OpenLineSession, user_id: int) -> dict[str, Any]:
    user = im_user(user_id)
    entry = {
        "id": str(user_id),
        "name": user["name"],
        "active": True,
        "firstName": user["first_name"],
        "lastName": user["last_name"],
        "bot": user_id == BOT_USER_ID,
        "connector": user_id == session.client_user_id,
        "externalAuthId": "imconnector" if user_id == session.client_user_id else "default",
        "type": "user",
    }
    if user_id == session.client_user_id:
        entry["name"] = session.client_name
    if user_id == BOT_USER_ID:
        entry["externalAuthId"] = "bot"
        entry["type"] = "bot"
    return entry


def session_history_get(ctx: MethodContext, args: Args) -> MethodResult:
    params = _params(args)
    store = ctx.store
    has_session = params.get("SESSION_ID") not in (None, "")
    has_chat = params.get("CHAT_ID") not in (None, "")
    if not has_session and not has_chat:
        raise B24Error("MISSING_REQUIRED_PARAM", "Session ID or Chat ID must be provided")
    session: OpenLineSession | None
    if has_session:
        session_id = as_int(params["SESSION_ID"])
        if not session_id:
            raise B24Error(
                "INVALID_SESSION_ID", "Unable to determine session ID from provided parameters"
            )
        session = store.ol_sessions.get(session_id)
    else:
        chat_id = as_int(params["CHAT_ID"])
        session = store.session_of_chat(chat_id) if chat_id else None
    if session is None:
        raise B24Error(
            "ACCESS_DENIED",
            "You cannot open this conversation as you do not have sufficient rights",
        )
    # The chat outlives a session; a session's history is its own span of it.
    messages = [
        m
        for m in store.messages_of(session.chat_id)
        if m.date >= session.opened and (session.closed is None or m.date <= session.closed)
    ]
    dialog = f"chat{session.chat_id}"
    users = {m.author_id for m in messages if m.author_id}
    data_1, data_2 = _entity_data(session)
    return MethodResult(
        {
            "chatId": session.chat_id,
            "canJoin": "Y",
            "canVoteHead": "N",
            "sessionId": session.id,
            "sessionVoteHead": 0,
            "sessionCommentHead": None,
            "userId": dialog,
            # Keyed by id, newest first, every value a string (as the portal sends it).
            "message": {
                str(m.id): {
                    "id": str(m.id),
                    "chatid": str(m.chat_id),
                    "senderid": str(m.author_id),
                    "recipientid": dialog,
                    "date": iso(m.date, ctx.tz),
                    "text": m.text,
                    "textlegacy": m.text,
                    "params": [],
                }
                for m in reversed(messages)
            },
            "usersMessage": {dialog: [str(m.id) for m in reversed(messages)]},
            "users": {str(u): _history_user(session, u) for u in sorted(users)},
            "openlines": {"canvoteashead": {str(session.line_id): False}},
            "userInGroup": [],
            "woUserInGroup": [],
            "chat": {
                str(session.chat_id): {
                    "id": str(session.chat_id),
                    "name": f"{session.client_name} - open line {session.line_id}",
                    "entityType": "LINES",
                    "entityId": user_code(session),
                    "entityData1": data_1,
                    "entityData2": data_2,
                    "messageCount": len(store.messages_of(session.chat_id)),
                    "type": "lines",
                }
            },
            "userBlockChat": [],
            "userInChat": {str(session.chat_id): sorted(users)},
            "files": [],
        }
    )


def crm_chat_get(ctx: MethodContext, args: Args) -> MethodResult:
    params = _params(args)
    kind = str(params.get("CRM_ENTITY_TYPE") or "").strip().lower()
    if not kind:
        raise B24Error("ERROR_ARGUMENT", "Argument 'CRM_ENTITY_TYPE' is null or empty")
    raw = params.get("CRM_ENTITY")
    if raw in (None, ""):
        raise B24Error("ERROR_ARGUMENT", "Argument 'CRM_ENTITY' is null or empty")
    entity_id = as_int(raw)
    if entity_id is None:
        raise B24Error(
            "ERROR_ARGUMENT", "The value of an argument 'CRM_ENTITY' has an invalid type"
        )
    owner_type = {"lead": 1, "deal": 2, "contact": 3, "company": 4}.get(kind)
    active_only = str(params.get("ACTIVE_ONLY", "Y")).upper() != "N"
    chats: dict[int, OpenLineSession] = {}
    for session in sorted(ctx.store.ol_sessions.values(), key=lambda s: s.id):
        if owner_type is None or parse_crm_entity(session.crm_entity) != (owner_type, entity_id):
            continue
        if active_only and session.closed is not None:
            continue
        chats[session.chat_id] = session
    return MethodResult(
        [
            {
                "CHAT_ID": str(chat_id),
                "CONNECTOR_ID": session.connector,
                "CONNECTOR_TITLE": session.connector.title(),
            }
            for chat_id, session in chats.items()
        ]
    )


def activity_get(ctx: MethodContext, args: Args) -> MethodResult:
    params = _params(args)
    activity_id = as_int(params.get("ID"))
    activity = ctx.store.activities.get(activity_id) if activity_id else None
    if activity is None:
        # crm's REST proxy: an empty code, the reason in the description.
        raise B24Error("", "Activity is not found.", 400)
    return MethodResult(
        {
            "ID": str(activity.id),
            "OWNER_ID": str(activity.owner_id),
            "OWNER_TYPE_ID": str(activity.owner_type_id),
            "TYPE_ID": "6",
            "PROVIDER_ID": activity.provider_id,
            "PROVIDER_TYPE_ID": activity.provider_type_id,
            "PROVIDER_GROUP_ID": None,
            "ASSOCIATED_ENTITY_ID": str(activity.associated_entity_id),
            "SUBJECT": activity.subject,
            "CREATED": iso(activity.created, ctx.tz),
            "LAST_UPDATED": iso(activity.last_updated, ctx.tz),
            "COMPLETED": "Y" if activity.completed else "N",
            "STATUS": "2" if activity.completed else "1",
            "RESPONSIBLE_ID": str(activity.responsible_id),
            "DIRECTION": "1",
            "DESCRIPTION": "",
            "SETTINGS": [],
            "PROVIDER_PARAMS": [],
            "PROVIDER_DATA": None,
        }
    )


OPENLINE_METHODS: dict[str, Handler] = {
    "imopenlines.dialog.get": dialog_get,
    "imopenlines.session.history.get": session_history_get,
    "imopenlines.crm.chat.get": crm_chat_get,
    "crm.activity.get": activity_get,
}
