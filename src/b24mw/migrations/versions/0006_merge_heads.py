"""merge the outbound (0002) and webhooks (0005) branches into one history

Both were written off 0001 at the same time.  Databases already migrated to
both heads are simply stamped with this revision; new migrations descend from
it, so ``alembic upgrade head`` works and the next author knows the parent.

Revision ID: 0006
Revises: 0002, 0005
"""

from __future__ import annotations

revision = "0006"
down_revision = ("0002", "0005")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
