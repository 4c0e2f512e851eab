"""webhooks: repeated event content opens a fresh read; reads keep the portal's time

Two changes of one task in one second give byte-identical events.  The inbox
now keeps each row's content digest (coalescing and the per-content cap look
it up), which replaces the signature table; task reads keep the portal time
they ran at, so reconciliation can tell a read inside a ``CHANGED_DATE``
second from one after it.

``webhook_signatures`` only ever held the last eleven minutes of signed
material; dropping it loses nothing an exact repeat would need (the inbox's
``rid:`` key still answers those).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_inbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("digest", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_webhook_inbox_digest", ["digest"], unique=False)

    with op.batch_alter_table("webhook_task_reads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("portal_read_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("webhook_signatures", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_signatures_seen_at")
    op.drop_table("webhook_signatures")


def downgrade() -> None:
    op.create_table(
        "webhook_signatures",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_webhook_signatures")),
    )
    with op.batch_alter_table("webhook_signatures", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_signatures_seen_at", ["seen_at"], unique=False)

    with op.batch_alter_table("webhook_task_reads", schema=None) as batch_op:
        batch_op.drop_column("portal_read_at")

    with op.batch_alter_table("webhook_inbox", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_inbox_digest")
        batch_op.drop_column("digest")
