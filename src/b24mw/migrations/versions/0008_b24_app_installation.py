"""b24_app_installation: b24mw as a Bitrix24 local application (OAuth tokens)

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "b24_app_installation",
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("client_endpoint", sa.String(length=500), nullable=False),
        sa.Column("server_endpoint", sa.String(length=500), nullable=True),
        sa.Column("application_token", sa.String(length=128), nullable=True),
        sa.Column("access_token", sa.String(length=512), nullable=False),
        sa.Column("refresh_token", sa.String(length=512), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scope", sa.Text(), nullable=True),
        sa.Column("app_status", sa.String(length=8), nullable=True),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("handler_base", sa.String(length=500), nullable=True),
        sa.Column("events_bound_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('active', 'refused', 'uninstalled')",
            name=op.f("ck_b24_app_installation_state"),
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_b24_app_installation")),
    )


def downgrade() -> None:
    op.drop_table("b24_app_installation")
