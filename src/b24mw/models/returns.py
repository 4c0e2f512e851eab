from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from b24mw.models.base import Base, BigIntPK, EnumString, TimestampMixin, in_list
from b24mw.models.enums import ItemQuality, ReturnSource, ReturnStatus, values


class Return(TimestampMixin, Base):
    __tablename__ = "returns"
    __table_args__ = (
        CheckConstraint(in_list("status", values(ReturnStatus)), name="status"),
        CheckConstraint(in_list("source", values(ReturnSource)), name="source"),
        Index("ix_returns_status_created", "status", "created_at"),
        Index("ix_returns_courier_status_created", "courier_id", "status", "created_at"),
        # The list without a status, newest first (migration 0012).
        Index("ix_returns_created_id", "created_at", "id"),
        Index("ix_returns_courier_created_id", "courier_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    source: Mapped[ReturnSource] = mapped_column(EnumString(ReturnSource, 16))
    courier_id: Mapped[str] = mapped_column(String(64))
    order_id_1c: Mapped[str | None] = mapped_column(String(64))
    task_id_b24: Mapped[int | None] = mapped_column(BigInteger)
    comment: Mapped[str | None] = mapped_column(Text)
    status: Mapped[ReturnStatus] = mapped_column(
        EnumString(ReturnStatus, 16), default=ReturnStatus.PENDING
    )
    manager_id: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)

    lines: Mapped[list[ReturnLine]] = relationship(
        back_populates="ret",
        cascade="all, delete-orphan",
        order_by="ReturnLine.line_no",
        lazy="selectin",
    )

    __mapper_args__ = {"version_id_col": version}


class ReturnLine(Base):
    __tablename__ = "return_lines"
    __table_args__ = (
        CheckConstraint("qty > 0", name="qty_positive"),
        CheckConstraint("length(trim(reason_code)) > 0", name="reason_code_not_blank"),
        CheckConstraint(in_list("quality", values(ItemQuality)), name="quality"),
        CheckConstraint("imei IS NULL OR length(imei) = 15", name="imei_length"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    return_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("returns.id", ondelete="CASCADE"), index=True
    )
    line_no: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str] = mapped_column(String(64))
    qty: Mapped[int] = mapped_column(Integer)
    quality: Mapped[ItemQuality] = mapped_column(EnumString(ItemQuality, 16))
    reason_code: Mapped[str] = mapped_column(String(64))
    reason_note: Mapped[str | None] = mapped_column(Text)
    photos: Mapped[list[Any]] = mapped_column(JSON, default=list)
    imei: Mapped[str | None] = mapped_column(String(15))
    serial: Mapped[str | None] = mapped_column(String(64))

    ret: Mapped[Return] = relationship(back_populates="lines")
