"""outbound engine: unknown-outcome flag, soft discard, lease index, throttle counters

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("outcome_unknown", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("discarded_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("discarded_by", sa.String(length=128), nullable=True))
        # Expired leases are reclaimed by the claim query: it filters on (status, lease_until).
        batch_op.create_index(
            "ix_outbox_status_lease_until", ["status", "lease_until"], unique=False
        )

    with op.batch_alter_table("rate_limit_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("limited_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("limited_total", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("rate_limit_state", schema=None) as batch_op:
        batch_op.drop_column("limited_total")
        batch_op.drop_column("limited_at")

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_status_lease_until")
        batch_op.drop_column("discarded_by")
        batch_op.drop_column("discarded_at")
        batch_op.drop_column("outcome_unknown")
