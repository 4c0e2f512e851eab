"""What an inbound Bitrix24 event points at.

Bitrix24 sends ids only (never the changed fields), every value a string and
``undefined`` for what does not apply; a JSON re-encoding may carry numbers.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

UNDEFINED = "undefined"
# Bitrix24 ids are positive BIGINTs; the columns that hold them are signed 64-bit.
MAX_ID = 2**63 - 1
_EVENT_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_ABSENT = (None, "", UNDEFINED)
TASK_EVENTS = frozenset({"ONTASKADD", "ONTASKUPDATE", "ONTASKDELETE"})
COMMENT_EVENTS = frozenset({"ONTASKCOMMENTADD", "ONTASKCOMMENTUPDATE"})
# A CRM activity: open-line sessions create one each (support/).
ACTIVITY_EVENTS = frozenset({"ONCRMACTIVITYADD", "ONCRMACTIVITYUPDATE"})
# Open-line events, sent to installed applications only: hints, never data.
OPENLINE_HINTS = frozenset(
    {"ONSESSIONSTART", "ONSESSIONFINISH", "ONOPENLINEMESSAGEADD", "ONOPENLINEMESSAGEUPDATE"}
)
# CRM events (``data[FIELDS][ID]`` only) and the crm.item entity type they name.
CRM_EVENTS = {
    **{f"ONCRMDEAL{action}": 2 for action in ("ADD", "UPDATE", "DELETE")},
    **{f"ONCRMLEAD{action}": 1 for action in ("ADD", "UPDATE", "DELETE")},
}
# Secrets Bitrix24 puts into ``auth``: never stored, never logged.
SECRET_AUTH_KEYS = frozenset({"application_token", "access_token", "refresh_token"})


def as_int(value: Any) -> int | None:
    """A non-negative id that fits the database (``0..2**63-1``), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= MAX_ID else None
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= 19:
            number = int(text)
            return number if number <= MAX_ID else None
    return None


class _BadId(Exception):
    pass


def _event_id(value: Any) -> int | None:
    """An id field of an event: absent (``undefined``) or a storable integer.

    Anything else cannot come from Bitrix24, and storing it would fail (a
    number past 64 bits) or mislead (a negative id): the caller rejects the
    event as malformed.
    """
    if value is None or (isinstance(value, str) and value.strip() in _ABSENT):
        return None
    number = as_int(value)
    if number is None:
        raise _BadId
    return number


def _section(data: Any, name: str) -> dict[str, Any]:
    if isinstance(data, dict):
        value = data.get(name)
        if isinstance(value, dict):
            return value
    return {}


@dataclass(frozen=True, slots=True)
class EventRef:
    name: str
    task_id: int | None
    comment_id: int | None = None
    message_id: int | None = None
    activity_id: int | None = None
    # Open-line hints: the chat and session they name.
    chat_id: int | None = None
    session_id: int | None = None
    # A CRM event: the crm.item entity type (2 deal, 1 lead) and the item's id.
    entity_type_id: int | None = None
    item_id: int | None = None

    @property
    def is_crm(self) -> bool:
        return self.entity_type_id is not None

    @property
    def is_new_card_comment(self) -> bool:
        """The new task card sends ``ID=0`` and a chat ``MESSAGE_ID`` instead."""
        return self.name in COMMENT_EVENTS and not self.comment_id and self.message_id is not None


def read_event(payload: dict[str, Any]) -> EventRef | None:
    """The event's name and ids, or ``None`` when the payload is no event at all
    (no name, a name that is not a Bitrix24 event name, an id that is neither
    ``undefined`` nor a 64-bit integer)."""
    name = payload.get("event")
    if not isinstance(name, str):
        return None
    name = name.strip().upper()
    if not _EVENT_NAME.fullmatch(name):
        return None
    data = payload.get("data")
    after = _section(data, "FIELDS_AFTER")
    before = _section(data, "FIELDS_BEFORE")
    try:
        if name in ACTIVITY_EVENTS:
            return EventRef(name, None, activity_id=_event_id(_section(data, "FIELDS").get("ID")))
        if name in OPENLINE_HINTS:
            return _hint(name, data)
        if name in CRM_EVENTS:
            item_id = _event_id(_section(data, "FIELDS").get("ID"))
            return EventRef(name, None, entity_type_id=CRM_EVENTS[name], item_id=item_id)
        if name in COMMENT_EVENTS:
            task_id = _event_id(after.get("TASK_ID")) or _event_id(before.get("TASK_ID"))
            return EventRef(
                name,
                task_id,
                comment_id=_event_id(after.get("ID")) or None,
                message_id=_event_id(after.get("MESSAGE_ID")),
            )
        task_id = _event_id(after.get("ID")) or _event_id(before.get("ID"))
    except _BadId:
        return None
    return EventRef(name, task_id)


def _first(value: Any) -> dict[str, Any]:
    """``DATA[0]``: a list in JSON, a dict keyed "0" in a PHP-style form."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return value[0]
    if isinstance(value, dict) and isinstance(value.get("0"), dict):
        return value["0"]
    return {}


def _hint(name: str, data: Any) -> EventRef:
    item = _first(data.get("DATA") if isinstance(data, dict) else None)
    return EventRef(
        name,
        None,
        chat_id=_event_id(_section(item, "chat").get("id")),
        session_id=_event_id(_section(item, "session").get("id")),
    )


def without_secrets(payload: dict[str, Any]) -> dict[str, Any]:
    auth = payload.get("auth")
    if not isinstance(auth, dict):
        return payload
    clean = {k: v for k, v in auth.items() if k not in SECRET_AUTH_KEYS}
    return {**payload, "auth": clean}


def _as_strings(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _as_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return {str(i): _as_strings(v) for i, v in enumerate(value)}
    return "" if value is None else str(value)


def event_digest(payload: dict[str, Any]) -> str:
    """Identity of an unsigned event: everything but ``auth`` (the same for every
    event of a portal), with scalars as strings so a form body and its JSON
    re-encoding by a proxy are one event."""
    body = _as_strings({k: v for k, v in payload.items() if k != "auth"})
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
