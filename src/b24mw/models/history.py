"""Task history and the integration log: what happened, and what was exchanged."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from b24mw.models.base import Base, BigIntPK, EnumString, in_list, utcnow
from b24mw.models.enums import LogDirection, TaskEventType, values


class HistoryEntry(Base):
    __tablename__ = "task_events"
    __table_args__ = (
        CheckConstraint(in_list("type", values(TaskEventType)), name="type"),
        Index(
            "ix_task_events_task_ts_status",
            "task_id_b24",
            text("ts DESC"),
            postgresql_where=text("type = 'status'"),
            sqlite_where=text("type = 'status'"),
        ),
        Index("ix_task_events_task_type", "task_id_b24", "type"),
        Index("ix_task_events_photo_checksum", "photo_checksum"),
        Index("ix_task_events_ts", "ts"),
        # An order's history in time order, with what the report needs to
        # find its first event and its final status without the table
        # (an index-only scan on PostgreSQL; reports/repository.py).
        Index(
            "ix_task_events_instant_order_ts",
            "instant_order_id",
            "ts",
            postgresql_include=["type", "status"],
        ),
        Index("ix_task_events_order_ts", "order_id", "ts", postgresql_include=["type", "status"]),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    task_id_b24: Mapped[int | None] = mapped_column(BigInteger)
    instant_order_id: Mapped[int | None] = mapped_column(
        ForeignKey("instant_orders.id", ondelete="SET NULL")
    )
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
    return_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("returns.id", ondelete="SET NULL"), index=True
    )
    ts: Mapped[datetime] = mapped_column(default=utcnow)
    type: Mapped[TaskEventType] = mapped_column(EnumString(TaskEventType, 16))
    status: Mapped[str | None] = mapped_column(String(32))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    payload_json: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    correlation_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    photo_checksum: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(128))


class IntegrationLog(Base):
    __tablename__ = "integration_log"
    __table_args__ = (
        CheckConstraint(in_list("direction", values(LogDirection)), name="direction"),
        Index("ix_integration_log_request_id", "request_id"),
        Index("ix_integration_log_resource_ts", "resource_ref", "ts"),
        Index("ix_integration_log_system_status_ts", "system", "status", "ts"),
        Index("ix_integration_log_ts", "ts"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(default=utcnow)
    direction: Mapped[LogDirection] = mapped_column(EnumString(LogDirection, 8))
    system: Mapped[str] = mapped_column(String(16))
    endpoint: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    http_code: Mapped[int | None] = mapped_column(Integer)
    request_id: Mapped[str | None] = mapped_column(String(128))
    resource_ref: Mapped[str | None] = mapped_column(String(128))
    request_json: Mapped[Any | None] = mapped_column(JSON)
    response_json: Mapped[Any | None] = mapped_column(JSON)
    error_code: Mapped[str | None] = mapped_column(String(64))
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
