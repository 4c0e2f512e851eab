"""Customer chats from Bitrix24 open lines: sessions, their messages, and what
each session is about (links to returns, orders, deliveries and deals)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from b24mw.models.base import Base, BigIntPK, EnumString, TimestampMixin, in_list, utcnow
from b24mw.models.enums import ChatStatus, LinkSource, LinkTarget, SenderKind, values


class ChatSession(TimestampMixin, Base):
    __tablename__ = "chat_sessions"
    __table_args__ = (
        CheckConstraint(in_list("status", values(ChatStatus)), name="status"),
        # The poller's queue: open sessions (and closed ones awaiting their
        # final read), least recently checked first.
        Index("ix_chat_sessions_status_checked", "status", "checked_at"),
        Index("ix_chat_sessions_line_opened", "line_id", "opened_at"),
        Index("ix_chat_sessions_opened", "opened_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    b24_session_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    line_id: Mapped[int | None] = mapped_column(Integer)
    connector: Mapped[str | None] = mapped_column(String(64))
    chat_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    user_code: Mapped[str | None] = mapped_column(String(255))
    # "D_12", "L_5": the CRM entity the session's activity is bound to.
    crm_entity: Mapped[str | None] = mapped_column(String(32))
    crm_activity_id: Mapped[int | None] = mapped_column(BigInteger)
    opened_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    status: Mapped[ChatStatus] = mapped_column(EnumString(ChatStatus, 16), default=ChatStatus.OPEN)
    # The newest message stored, and the newest Bitrix24 reported (dialog.get).
    stored_message_id: Mapped[int] = mapped_column(BigInteger, default=0)
    seen_message_id: Mapped[int] = mapped_column(BigInteger, default=0)
    # A full history read is owed: new session, grown chat, closed, or a hint.
    read_due: Mapped[bool] = mapped_column(Boolean, default=True)
    checked_at: Mapped[datetime | None] = mapped_column()


class ChatMessage(Base):
    __tablename__ = "chat_messages"
    __table_args__ = (
        CheckConstraint(in_list("sender_kind", values(SenderKind)), name="sender_kind"),
        Index("ix_chat_messages_session_ts", "session_id", "ts"),
        Index("ix_chat_messages_ts", "ts"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    b24_message_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("chat_sessions.id", ondelete="CASCADE"))
    sender_kind: Mapped[SenderKind] = mapped_column(EnumString(SenderKind, 16))
    sender_id: Mapped[int] = mapped_column(BigInteger, default=0)
    ts: Mapped[datetime] = mapped_column(default=utcnow)
    text_bbcode: Mapped[str] = mapped_column(Text, default="")
    text_plain: Mapped[str] = mapped_column(Text, default="")


class ChatLink(Base):
    __tablename__ = "chat_links"
    __table_args__ = (
        CheckConstraint(in_list("target_kind", values(LinkTarget)), name="target_kind"),
        CheckConstraint(in_list("found_by", values(LinkSource)), name="found_by"),
        UniqueConstraint("session_id", "target_kind", "target_id"),
        Index("ix_chat_links_target", "target_kind", "target_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("chat_sessions.id", ondelete="CASCADE"))
    target_kind: Mapped[LinkTarget] = mapped_column(EnumString(LinkTarget, 16))
    # The target's own id as text: a UUID for returns, an integer otherwise.
    target_id: Mapped[str] = mapped_column(String(64))
    found_by: Mapped[LinkSource] = mapped_column(EnumString(LinkSource, 16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
