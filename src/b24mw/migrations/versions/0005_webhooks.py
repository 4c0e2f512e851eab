"""webhooks: signature replay guard, sync cursors, task reads

Revision ID: 0005
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_signatures",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_webhook_signatures")),
    )
    with op.batch_alter_table("webhook_signatures", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_signatures_seen_at", ["seen_at"], unique=False)

    op.create_table(
        "sync_cursors",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sync_cursors")),
    )

    op.create_table(
        "webhook_task_reads",
        sa.Column("task_id_b24", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("changed_date", sa.String(length=40), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("task_id_b24", name=op.f("pk_webhook_task_reads")),
    )
    with op.batch_alter_table("webhook_task_reads", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_task_reads_read_at", ["read_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("webhook_task_reads", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_task_reads_read_at")
    op.drop_table("webhook_task_reads")
    op.drop_table("sync_cursors")
    with op.batch_alter_table("webhook_signatures", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_signatures_seen_at")
    op.drop_table("webhook_signatures")
