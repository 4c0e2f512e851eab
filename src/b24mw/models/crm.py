"""The CRM mirror (migration 0013): Bitrix24 deals and leads as b24mw last
read them, and each deal pipeline's stages."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, CheckConstraint, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from b24mw.models.base import Base, TimestampMixin, in_list

SEMANTICS = ("P", "S", "F")


class CrmDeal(TimestampMixin, Base):
    """A deal (``crm.item`` entity type 2).  ``b24_updated_at`` is Bitrix24's
    ``updatedTime``: a read older than the stored one never overwrites it."""

    __tablename__ = "crm_deals"
    __table_args__ = (
        CheckConstraint(in_list("stage_semantic", SEMANTICS), name="stage_semantic"),
        Index("ix_crm_deals_category_stage", "category_id", "stage_id"),
        Index("ix_crm_deals_assigned_by_id", "assigned_by_id"),
        Index("ix_crm_deals_b24_updated_at", "b24_updated_at", "id"),
        Index("ix_crm_deals_lead_id_b24", "lead_id_b24"),
    )

    # Bitrix24's id: the mirror never invents one.
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    title: Mapped[str] = mapped_column(String(255))
    category_id: Mapped[int] = mapped_column(Integer, default=0)
    stage_id: Mapped[str] = mapped_column(String(64))
    stage_semantic: Mapped[str] = mapped_column(String(1), default="P")
    amount: Mapped[Decimal]
    currency_code: Mapped[str] = mapped_column(String(3))
    contact_id_b24: Mapped[int | None] = mapped_column(BigInteger)
    company_id_b24: Mapped[int | None] = mapped_column(BigInteger)
    assigned_by_id: Mapped[int | None] = mapped_column(BigInteger)
    lead_id_b24: Mapped[int | None] = mapped_column(BigInteger)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    b24_updated_at: Mapped[datetime]
    raw: Mapped[dict[str, Any]] = mapped_column(JSON)
    read_at: Mapped[datetime]
    # Deleted in Bitrix24 (ONCRMDEALDELETE, or a read that finds it gone):
    # recorded, never cascaded into the orders that point at it.
    deleted_at: Mapped[datetime | None]
    # The stage b24mw itself last set, and when: a later stage elsewhere is
    # a person's or automation's move after ours, recorded and not fought.
    b24mw_stage_id: Mapped[str | None] = mapped_column(String(64))
    b24mw_stage_at: Mapped[datetime | None]


class CrmLead(TimestampMixin, Base):
    """A lead (entity type 1), mirrored read-only."""

    __tablename__ = "crm_leads"
    __table_args__ = (
        CheckConstraint(in_list("status_semantic", SEMANTICS), name="status_semantic"),
        Index("ix_crm_leads_status_id", "status_id"),
        Index("ix_crm_leads_b24_updated_at", "b24_updated_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    title: Mapped[str] = mapped_column(String(255))
    status_id: Mapped[str] = mapped_column(String(64))
    status_semantic: Mapped[str] = mapped_column(String(1), default="P")
    amount: Mapped[Decimal]
    currency_code: Mapped[str] = mapped_column(String(3))
    contact_id_b24: Mapped[int | None] = mapped_column(BigInteger)
    company_id_b24: Mapped[int | None] = mapped_column(BigInteger)
    assigned_by_id: Mapped[int | None] = mapped_column(BigInteger)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    b24_updated_at: Mapped[datetime]
    raw: Mapped[dict[str, Any]] = mapped_column(JSON)
    read_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]


class CrmPipeline(Base):
    """A deal pipeline as ``crm.status.entity.types`` and ``crm.status.list``
    last described it: its final stages and every stage's semantics."""

    __tablename__ = "crm_pipelines"

    category_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(255))
    success_stage_id: Mapped[str] = mapped_column(String(64))
    failure_stage_id: Mapped[str] = mapped_column(String(64))
    # [{"id": "C1:WON", "name": "...", "semantics": "S"}, ...]
    stages: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    read_at: Mapped[datetime]
