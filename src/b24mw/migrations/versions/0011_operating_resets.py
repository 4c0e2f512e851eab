"""operating_resets: the last operating_reset_at Bitrix24 gave each method

A method blocked by OPERATION_TIME_LIMIT is retried first at the
``time.operating_reset_at`` of the last successful response for that method
(the 429 answer does not carry it), so the shared limiter keeps it per method.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rate_limit_state", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("operating_resets", sa.JSON(), nullable=False, server_default="{}")
        )


def downgrade() -> None:
    with op.batch_alter_table("rate_limit_state", schema=None) as batch_op:
        batch_op.drop_column("operating_resets")
