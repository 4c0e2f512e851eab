"""Tables only the webhook flow uses (migrations 0005, 0007)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from b24mw.models.base import Base, utcnow


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
    # When the read ran, by the portal's clock (the answer's ``time.start``).
    # ``CHANGED_DATE`` has whole seconds: a read inside that second does not
    # prove that nothing changed later in it.
    portal_read_at: Mapped[datetime | None]
