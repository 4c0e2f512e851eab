"""Intake and linking: what the worker does with a CRM activity, a session's
dialog and its history.  Each function works inside the caller's unit of
work; a crash before the commit leaves the session due for the same read.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from b24mw.history.repository import record_event
from b24mw.kit.bbcode import to_plain
from b24mw.models.base import utcnow
from b24mw.models.enums import ChatStatus, LinkSource, LinkTarget, SenderKind, TaskEventType
from b24mw.models.support import ChatLink, ChatMessage, ChatSession
from b24mw.support import mentions
from b24mw.support.repository import SupportRepository
from b24mw.webhooks.events import as_int

PROVIDER_ID = "IMOPENLINES_SESSION"
# CRM owner types: 1 lead, 2 deal, 3 contact, 4 company.
_CRM_PREFIX = {1: "L", 2: "D", 3: "C", 4: "CO"}


@dataclass(frozen=True, slots=True)
class Activity:
    id: int
    b24_session_id: int
    crm_entity: str | None
    completed: bool
    line_id: int | None


def parse_activity(raw: Any) -> Activity | None:
    """The open-line session an activity stands for; ``None`` for any other activity."""
    if not isinstance(raw, dict) or str(raw.get("PROVIDER_ID", "")).upper() != PROVIDER_ID:
        return None
    activity_id = as_int(raw.get("ID"))
    session_id = as_int(raw.get("ASSOCIATED_ENTITY_ID"))
    if not activity_id or not session_id:
        return None
    owner_type = as_int(raw.get("OWNER_TYPE_ID"))
    owner_id = as_int(raw.get("OWNER_ID"))
    prefix = _CRM_PREFIX.get(owner_type or 0)
    return Activity(
        id=activity_id,
        b24_session_id=session_id,
        crm_entity=f"{prefix}_{owner_id}" if prefix and owner_id else None,
        completed=str(raw.get("COMPLETED", "")).upper() == "Y",
        # UNCONFIRMED: the line id in PROVIDER_TYPE_ID; the history read sets it for sure.
        line_id=as_int(raw.get("PROVIDER_TYPE_ID")),
    )


async def on_activity(db: Any, activity: Activity) -> ChatSession:
    """Register the session (once) and owe it a read; a completed activity closes it."""
    repo = SupportRepository(db)
    row = await repo.by_b24_id(activity.b24_session_id)
    if row is None:
        row = await repo.add_session(
            ChatSession(
                b24_session_id=activity.b24_session_id,
                crm_activity_id=activity.id,
                crm_entity=activity.crm_entity,
                line_id=activity.line_id,
                status=ChatStatus.OPEN,
                stored_message_id=0,
                seen_message_id=0,
                read_due=True,
                opened_at=utcnow(),
            )
        )
    row.crm_activity_id = activity.id
    if activity.crm_entity and activity.crm_entity != row.crm_entity:
        row.crm_entity = activity.crm_entity
    if activity.completed and row.status == ChatStatus.OPEN:
        close(row)
    row.read_due = True
    await link_crm_binding(db, row)
    await db.flush()
    return row


async def on_hint(db: Any, *, chat_id: int | None, b24_session_id: int | None) -> int:
    """An application event (``OnOpenLineMessageAdd``...): read sooner, nothing more.
    The number of sessions now due."""
    repo = SupportRepository(db)
    rows: list[ChatSession] = []
    if b24_session_id:
        row = await repo.by_b24_id(b24_session_id)
        if row is None:
            # Unknown yet (its activity event is on its way or lost): the read
            # that follows is what fills it in.
            row = await repo.add_session(
                ChatSession(
                    b24_session_id=b24_session_id,
                    chat_id=chat_id,
                    status=ChatStatus.OPEN,
                    stored_message_id=0,
                    seen_message_id=0,
                    read_due=True,
                    opened_at=utcnow(),
                )
            )
        rows.append(row)
    elif chat_id:
        rows.extend(r for r in await repo.by_chat_id(chat_id) if r.status == ChatStatus.OPEN)
    for row in rows:
        row.read_due = True
    await db.flush()
    return len(rows)


def close(row: ChatSession) -> None:
    row.status = ChatStatus.CLOSED
    row.closed_at = row.closed_at or utcnow()
    row.read_due = True  # the final read captures the last messages


def apply_dialog(row: ChatSession, dialog: Any) -> None:
    """What ``imopenlines.dialog.get`` says: the chat grew, or moved on to a
    newer session (ours is then over)."""
    if not isinstance(dialog, dict):
        return
    row.chat_id = row.chat_id or as_int(dialog.get("id"))
    last = as_int(dialog.get("last_message_id")) or 0
    row.seen_message_id = max(row.seen_message_id, last)
    if last > row.stored_message_id:
        row.read_due = True
    current = _session_of(dialog.get("entity_data_1"))
    if current is not None and current != row.b24_session_id and row.status == ChatStatus.OPEN:
        close(row)


def _session_of(entity_data_1: Any) -> int | None:
    """The sixth field of ``entity_data_1`` is the chat's current session."""
    if not isinstance(entity_data_1, str):
        return None
    parts = entity_data_1.split("|")
    return as_int(parts[5]) if len(parts) > 5 else None


def _parse_time(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return utcnow()
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return utcnow()


def _sender_kind(sender_id: int, users: Any) -> SenderKind:
    if sender_id == 0:
        return SenderKind.SYSTEM
    user = users.get(str(sender_id)) if isinstance(users, dict) else None
    if isinstance(user, dict):
        if user.get("connector") is True or str(user.get("connector")).upper() in ("Y", "TRUE"):
            return SenderKind.CLIENT
        if user.get("bot") is True or str(user.get("bot")).upper() in ("Y", "TRUE"):
            return SenderKind.BOT
    return SenderKind.OPERATOR


async def apply_history(db: Any, row: ChatSession, history: Any) -> list[ChatMessage]:
    """Store the messages not stored yet (idempotent by Bitrix24 message id),
    link what they mention; the new messages."""
    if not isinstance(history, dict):
        row.read_due = False
        return []
    chat_id = as_int(history.get("chatId"))
    row.chat_id = row.chat_id or chat_id
    chat = history.get("chat")
    if isinstance(chat, dict) and chat_id is not None:
        info = chat.get(str(chat_id))
        if isinstance(info, dict) and isinstance(info.get("entityId"), str):
            row.user_code = info["entityId"][:255]
            parts = row.user_code.split("|")
            row.connector = parts[0][:64] or row.connector
            if len(parts) > 1:
                row.line_id = as_int(parts[1]) or row.line_id
    raw_messages = history.get("message")
    items = list(raw_messages.values()) if isinstance(raw_messages, dict) else []
    parsed: dict[int, dict[str, Any]] = {}
    for item in items:
        if isinstance(item, dict) and (message_id := as_int(item.get("id"))):
            parsed[message_id] = item
    repo = SupportRepository(db)
    known = await repo.known_message_ids(parsed)
    users = history.get("users")
    added: list[ChatMessage] = []
    for message_id in sorted(set(parsed) - known):
        item = parsed[message_id]
        sender = as_int(item.get("senderid")) or 0
        raw_text = item.get("text")
        text = raw_text if isinstance(raw_text, str) else ""
        message = ChatMessage(
            b24_message_id=message_id,
            session_id=row.id,
            sender_kind=_sender_kind(sender, users).value,
            sender_id=sender,
            ts=_parse_time(item.get("date")),
            text_bbcode=text,
            text_plain=to_plain(text),
        )
        repo.add_message(message)
        added.append(message)
    if parsed:
        row.stored_message_id = max(row.stored_message_id, max(parsed))
        row.seen_message_id = max(row.seen_message_id, row.stored_message_id)
        first = min(_parse_time(parsed[m].get("date")) for m in parsed)
        if row.opened_at is None or first < row.opened_at:
            row.opened_at = first
    row.read_due = False
    await db.flush()
    for message in added:
        if message.sender_kind == SenderKind.CLIENT:
            await link_mentions(db, row, message.text_plain)
    return added


async def link_mentions(db: Any, row: ChatSession, text: str) -> int:
    found = mentions.find(text)
    if not found:
        return 0
    repo = SupportRepository(db)
    targets: list[tuple[LinkTarget, str]] = []
    targets += [
        (LinkTarget.INSTANT_ORDER, str(i)) for i in await repo.existing_instant_orders(found.orders)
    ]
    deliveries = await repo.existing_deliveries(found.orders | found.deliveries)
    deliveries |= set((await repo.deliveries_by_1c(found.documents_1c)).values())
    targets += [(LinkTarget.DELIVERY, str(i)) for i in deliveries]
    targets += [(LinkTarget.RETURN, str(r)) for r in await repo.existing_returns(found.returns)]
    linked = 0
    for kind, target in sorted(targets):
        linked += await add_link(db, row, kind, target, LinkSource.MENTION, actor_id=None)
    return linked


async def link_crm_binding(db: Any, row: ChatSession) -> None:
    """A session bound to a deal is about that deal (by its Bitrix24 id) and,
    through it, about the deliveries and orders that serve the deal."""
    if not (row.crm_entity and row.crm_entity.startswith("D_")):
        return
    deal_id = row.crm_entity.removeprefix("D_")
    await add_link(db, row, LinkTarget.DEAL, deal_id, LinkSource.CRM_BINDING, actor_id=None)
    if not deal_id.isdigit() or not 0 < int(deal_id) < 2**63:
        return
    deliveries, orders = await SupportRepository(db).serving_deal(int(deal_id))
    for kind, ids in ((LinkTarget.DELIVERY, deliveries), (LinkTarget.INSTANT_ORDER, orders)):
        for target in ids:
            await add_link(db, row, kind, str(target), LinkSource.CRM_BINDING, actor_id=None)


def _target_columns(kind: str, target: str) -> dict[str, Any]:
    if kind == LinkTarget.INSTANT_ORDER:
        return {"instant_order_id": int(target)}
    if kind == LinkTarget.DELIVERY:
        return {"order_id": int(target)}
    if kind == LinkTarget.RETURN:
        return {"return_id": uuid.UUID(target)}
    return {}


def _history(
    db: Any, row: ChatSession, kind: LinkTarget, target: str, action: str, **extra: Any
) -> None:
    columns = _target_columns(kind, target)
    if not columns:
        # Deals have no table of their own yet (issue 16): nothing to hang it on.
        return
    record_event(
        db,
        type=TaskEventType.CHAT,
        actor_id=extra.pop("actor_id", None),
        payload={
            "chat_session_id": row.id,
            "b24_session_id": row.b24_session_id,
            "chat_id": row.chat_id,
            "action": action,
            **extra,
        },
        **columns,
    )


async def add_link(
    db: Any,
    row: ChatSession,
    kind: LinkTarget,
    target: str,
    found_by: LinkSource,
    *,
    actor_id: str | None,
) -> int:
    created = await SupportRepository(db).add_link(
        ChatLink(
            session_id=row.id,
            target_kind=kind,
            target_id=target,
            found_by=found_by,
            actor_id=actor_id,
            created_at=utcnow(),
        )
    )
    if created:
        _history(db, row, kind, target, "linked", found_by=found_by.value, actor_id=actor_id)
    return int(created)


async def remove_link(db: Any, row: ChatSession, link: ChatLink, *, actor_id: str) -> None:
    await SupportRepository(db).delete_link(link)
    _history(db, row, link.target_kind, link.target_id, "unlinked", actor_id=actor_id)
