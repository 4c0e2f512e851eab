"""crm: deals, leads and pipelines mirrored from Bitrix24; orders link to deals

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

UTC_TS = sa.DateTime(timezone=True)


def _mirror_columns(stage: str) -> list[sa.Column]:
    return [
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column(f"{stage}_id", sa.String(length=64), nullable=False),
        sa.Column(f"{stage}_semantic", sa.String(length=1), nullable=False),
        sa.Column("amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("currency_code", sa.String(length=3), nullable=False),
        sa.Column("contact_id_b24", sa.BigInteger(), nullable=True),
        sa.Column("company_id_b24", sa.BigInteger(), nullable=True),
        sa.Column("assigned_by_id", sa.BigInteger(), nullable=True),
    ]


def _tail_columns() -> list[sa.Column]:
    return [
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("b24_updated_at", UTC_TS, nullable=False),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.Column("read_at", UTC_TS, nullable=False),
        sa.Column("deleted_at", UTC_TS, nullable=True),
    ]


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", UTC_TS, nullable=False),
        sa.Column("updated_at", UTC_TS, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "crm_deals",
        *_mirror_columns("stage")[:2],
        sa.Column("category_id", sa.Integer(), nullable=False),
        *_mirror_columns("stage")[2:],
        sa.Column("lead_id_b24", sa.BigInteger(), nullable=True),
        *_tail_columns(),
        sa.Column("b24mw_stage_id", sa.String(length=64), nullable=True),
        sa.Column("b24mw_stage_at", UTC_TS, nullable=True),
        *_timestamps(),
        sa.CheckConstraint(
            "stage_semantic IN ('P', 'S', 'F')", name=op.f("ck_crm_deals_stage_semantic")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_deals")),
    )
    op.create_index("ix_crm_deals_category_stage", "crm_deals", ["category_id", "stage_id"])
    op.create_index("ix_crm_deals_assigned_by_id", "crm_deals", ["assigned_by_id"])
    op.create_index("ix_crm_deals_b24_updated_at", "crm_deals", ["b24_updated_at", "id"])
    op.create_index("ix_crm_deals_lead_id_b24", "crm_deals", ["lead_id_b24"])
    op.create_table(
        "crm_leads",
        *_mirror_columns("status"),
        *_tail_columns(),
        *_timestamps(),
        sa.CheckConstraint(
            "status_semantic IN ('P', 'S', 'F')", name=op.f("ck_crm_leads_status_semantic")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_leads")),
    )
    op.create_index("ix_crm_leads_status_id", "crm_leads", ["status_id"])
    op.create_index("ix_crm_leads_b24_updated_at", "crm_leads", ["b24_updated_at", "id"])
    op.create_table(
        "crm_pipelines",
        sa.Column("category_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("success_stage_id", sa.String(length=64), nullable=False),
        sa.Column("failure_stage_id", sa.String(length=64), nullable=False),
        sa.Column("stages", sa.JSON(), nullable=False),
        sa.Column("read_at", UTC_TS, nullable=False),
        sa.PrimaryKeyConstraint("category_id", name=op.f("pk_crm_pipelines")),
    )
    for table in ("orders", "instant_orders"):
        op.add_column(table, sa.Column("deal_id_b24", sa.BigInteger(), nullable=True))
        op.create_index(f"ix_{table}_deal_id_b24", table, ["deal_id_b24"])


def downgrade() -> None:
    for table in ("orders", "instant_orders"):
        op.drop_index(f"ix_{table}_deal_id_b24", table_name=table)
        # A plain DROP COLUMN (SQLite 3.35+): batch mode would rebuild the
        # table and lose its change_seq triggers (0009).
        op.drop_column(table, "deal_id_b24")
    op.drop_table("crm_pipelines")
    op.drop_index("ix_crm_leads_b24_updated_at", table_name="crm_leads")
    op.drop_index("ix_crm_leads_status_id", table_name="crm_leads")
    op.drop_table("crm_leads")
    for name in (
        "ix_crm_deals_lead_id_b24",
        "ix_crm_deals_b24_updated_at",
        "ix_crm_deals_assigned_by_id",
        "ix_crm_deals_category_stage",
    ):
        op.drop_index(name, table_name="crm_deals")
    op.drop_table("crm_deals")
