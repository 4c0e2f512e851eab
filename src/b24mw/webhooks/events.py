"""What an inbound Bitrix24 event points at.

Bitrix24 sends ids only (never the changed fields), every value a string and
``undefined`` for what does not apply; a JSON re-encoding may carry numbers.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

UNDEFINED = "undefined"
TASK_EVENTS = frozenset({"ONTASKADD", "ONTASKUPDATE", "ONTASKDELETE"})
COMMENT_EVENTS = frozenset({"ONTASKCOMMENTADD", "ONTASKCOMMENTUPDATE"})
# Secrets Bitrix24 puts into ``auth``: never stored, never logged.
SECRET_AUTH_KEYS = frozenset({"application_token", "access_token", "refresh_token"})


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= 18:
            return int(text)
    return None


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

    @property
    def is_new_card_comment(self) -> bool:
        """The new task card sends ``ID=0`` and a chat ``MESSAGE_ID`` instead."""
        return self.name in COMMENT_EVENTS and not self.comment_id and self.message_id is not None


def read_event(payload: dict[str, Any]) -> EventRef | None:
    """The event's name and ids, or ``None`` when the payload is no event at all."""
    name = payload.get("event")
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        return None
    name = name.strip().upper()
    data = payload.get("data")
    after = _section(data, "FIELDS_AFTER")
    before = _section(data, "FIELDS_BEFORE")
    if name in COMMENT_EVENTS:
        task_id = as_int(after.get("TASK_ID")) or as_int(before.get("TASK_ID"))
        return EventRef(
            name,
            task_id,
            comment_id=as_int(after.get("ID")) or None,
            message_id=as_int(after.get("MESSAGE_ID")),
        )
    task_id = as_int(after.get("ID")) or as_int(before.get("ID"))
    return EventRef(name, task_id)


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
