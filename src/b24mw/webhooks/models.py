"""Tables only the webhook flow uses (migration 0005)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from b24mw.models.base import Base, utcnow


class WebhookSignature(Base):
    """Signed material seen in the last minutes.  The signature does not cover
    ``X-Request-Id``, so without this a captured request could be replayed
    under a fresh id inside the ±300 s window."""

    __tablename__ = "webhook_signatures"
    __table_args__ = (Index("ix_webhook_signatures_seen_at", "seen_at"),)

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(128))
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class SyncCursor(Base):
    """How far a scheduled scan got (reconciliation's ``>CHANGED_DATE``)."""

    __tablename__ = "sync_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TaskRead(Base):
    """The ``CHANGED_DATE`` at which the worker last read a task, so
    reconciliation feeds only tasks changed after processing saw them."""

    __tablename__ = "webhook_task_reads"
    __table_args__ = (Index("ix_webhook_task_reads_read_at", "read_at"),)

    task_id_b24: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    changed_date: Mapped[str] = mapped_column(String(40))
    read_at: Mapped[datetime] = mapped_column(default=utcnow)
