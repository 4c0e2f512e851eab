from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from b24mw.kit.pagination import CursorKey, Paginated
from b24mw.models.enums import ChatStatus, LinkSource, LinkTarget, SenderKind

# The lists' cursors: a session's id (newest first); a message's Bitrix24 id.
SESSION_CURSOR = CursorKey("chat-sessions", (int,))
MESSAGE_CURSOR = CursorKey("chat-messages", (int,))


class ChatLinkRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    target_kind: LinkTarget
    target_id: str
    found_by: LinkSource
    actor_id: str | None = None
    created_at: datetime


class ChatLinkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target_kind: LinkTarget
    target_id: str = Field(min_length=1, max_length=64)


class ChatMessageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    b24_message_id: int
    sender_kind: SenderKind
    sender_id: int
    ts: datetime
    text_bbcode: str
    text_plain: str


class ChatSessionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    b24_session_id: int
    line_id: int | None
    connector: str | None
    chat_id: int | None
    user_code: str | None
    crm_entity: str | None
    status: ChatStatus
    opened_at: datetime | None
    closed_at: datetime | None
    links: list[ChatLinkRead] = []


class ChatSessionDetail(ChatSessionRead):
    messages: Paginated[ChatMessageRead]
