"""Walking Warehouse orders (``instant_orders``) and 1C deliveries (``orders``)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from b24mw.models.base import Base, BigIntPK, EnumString, TimestampMixin, in_list
from b24mw.models.couriers import PHONE_CHECK
from b24mw.models.enums import OrderOrigin, OrderStatus, values

STATUS_CHECK = in_list("status", values(OrderStatus))
# Set by database triggers on every insert and update (migration 0009), never
# by the application: the position of the row's last change in the KMP4
# export feed (``reports/changes.py`` explains the two engines).
CHANGE_SEQ_DOC = "position of the last change in the export feed (trigger-maintained)"


class InstantOrder(TimestampMixin, Base):
    __tablename__ = "instant_orders"
    __table_args__ = (
        CheckConstraint(STATUS_CHECK, name="status"),
        CheckConstraint(in_list("origin", values(OrderOrigin)), name="origin"),
        CheckConstraint("total_amount >= 0", name="total_non_negative"),
        CheckConstraint(PHONE_CHECK.format(c="client_phone"), name="client_phone_format"),
        CheckConstraint("length(currency_code) = 3", name="currency_code"),
        Index("uq_instant_orders_task_courier", "task_id_b24", "courier_id", unique=True),
        Index("ix_instant_orders_status_created", "status", "created_at"),
        Index("ix_instant_orders_courier_status_created", "courier_id", "status", "created_at"),
        Index("ix_instant_orders_change_seq", "change_seq", "id"),
        Index("ix_instant_orders_deal_id_b24", "deal_id_b24"),
        # The list without a status, newest first (migration 0012).
        Index("ix_instant_orders_created_id", "created_at", "id"),
        Index("ix_instant_orders_courier_created_id", "courier_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    task_id_b24: Mapped[int | None] = mapped_column(BigInteger)
    # The Bitrix24 deal it serves (a task bound to a deal, UF_CRM_TASK D_<id>).
    deal_id_b24: Mapped[int | None] = mapped_column(BigInteger)
    courier_id: Mapped[str | None] = mapped_column(ForeignKey("couriers.id"))
    title: Mapped[str] = mapped_column(String(255))
    customer_name: Mapped[str] = mapped_column(String(255))
    client_phone: Mapped[str | None] = mapped_column(String(12))
    status: Mapped[OrderStatus] = mapped_column(
        EnumString(OrderStatus, 16), default=OrderStatus.NEW
    )
    total_amount: Mapped[Decimal]
    currency_code: Mapped[str] = mapped_column(String(3), default="RUB")
    notes: Mapped[str | None] = mapped_column(Text)
    origin: Mapped[OrderOrigin] = mapped_column(
        EnumString(OrderOrigin, 16), default=OrderOrigin.API
    )
    version: Mapped[int] = mapped_column(Integer, default=1)
    change_seq: Mapped[int | None] = mapped_column(BigInteger, doc=CHANGE_SEQ_DOC)

    lines: Mapped[list[InstantOrderLine]] = relationship(
        back_populates="order",
        cascade="all, delete-orphan",
        order_by="InstantOrderLine.line_no",
        lazy="selectin",
    )

    __mapper_args__ = {"version_id_col": version}


class InstantOrderLine(Base):
    __tablename__ = "instant_order_lines"
    __table_args__ = (
        CheckConstraint("qty > 0", name="qty_positive"),
        CheckConstraint("price >= 0", name="price_non_negative"),
        CheckConstraint("length(trim(sku)) > 0", name="sku_not_blank"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("instant_orders.id", ondelete="CASCADE"), index=True
    )
    line_no: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    qty: Mapped[int] = mapped_column(Integer)
    price: Mapped[Decimal]

    order: Mapped[InstantOrder] = relationship(back_populates="lines")


class Delivery(TimestampMixin, Base):
    """A delivery document owned by 1C; b24mw runs its logistics."""

    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(STATUS_CHECK, name="status"),
        CheckConstraint("cod_amount >= 0", name="cod_non_negative"),
        CheckConstraint("delivery_price >= 0", name="delivery_price_non_negative"),
        CheckConstraint("total_amount >= 0", name="total_non_negative"),
        CheckConstraint(PHONE_CHECK.format(c="client_phone"), name="client_phone_format"),
        CheckConstraint("length(currency_code) = 3", name="currency_code"),
        Index("ix_orders_status_created", "status", "created_at"),
        Index("ix_orders_courier_status_created", "courier_id", "status", "created_at"),
        Index("ix_orders_task_id_b24", "task_id_b24"),
        Index("ix_orders_change_seq", "change_seq", "id"),
        Index("ix_orders_deal_id_b24", "deal_id_b24"),
        # The list without a status, newest first (migration 0012).
        Index("ix_orders_created_id", "created_at", "id"),
        Index("ix_orders_courier_created_id", "courier_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    external_id_1c: Mapped[str] = mapped_column(String(64), unique=True)
    task_id_b24: Mapped[int | None] = mapped_column(BigInteger)
    # The Bitrix24 deal it serves: closed when the delivery ends.
    deal_id_b24: Mapped[int | None] = mapped_column(BigInteger)
    courier_id: Mapped[str] = mapped_column(ForeignKey("couriers.id"))
    title: Mapped[str] = mapped_column(String(255))
    customer_name: Mapped[str] = mapped_column(String(255))
    address: Mapped[str] = mapped_column(Text)
    client_phone: Mapped[str | None] = mapped_column(String(12))
    cod_amount: Mapped[Decimal]
    delivery_price: Mapped[Decimal]
    total_amount: Mapped[Decimal]
    currency_code: Mapped[str] = mapped_column(String(3), default="RUB")
    status: Mapped[OrderStatus] = mapped_column(
        EnumString(OrderStatus, 16), default=OrderStatus.NEW
    )
    notes: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    change_seq: Mapped[int | None] = mapped_column(BigInteger, doc=CHANGE_SEQ_DOC)

    lines: Mapped[list[DeliveryLine]] = relationship(
        back_populates="delivery",
        cascade="all, delete-orphan",
        order_by="DeliveryLine.line_no",
        lazy="selectin",
    )

    __mapper_args__ = {"version_id_col": version}


class DeliveryLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (
        CheckConstraint("qty > 0", name="qty_positive"),
        CheckConstraint("price >= 0", name="price_non_negative"),
        CheckConstraint("length(trim(sku)) > 0", name="sku_not_blank"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    line_no: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    qty: Mapped[int] = mapped_column(Integer)
    price: Mapped[Decimal]

    delivery: Mapped[Delivery] = relationship(back_populates="lines")


class ChangeCounter(Base):
    """SQLite's change sequence for ``change_seq`` (one row, bumped by the
    triggers); PostgreSQL stamps the writing transaction's id instead."""

    __tablename__ = "change_counter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(BigInteger)
