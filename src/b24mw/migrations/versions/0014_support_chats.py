"""support: open-line chat sessions, messages and links; task_events type 'chat'

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
# The brief named 0010; this branch already carries 0011 (operating resets),
# and two heads would break `migrate`.  The lead re-chains on merge.
down_revision = "0013"
branch_labels = None
depends_on = None

BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OLD_TYPES = "type IN ('status', 'photo', 'geo', 'comment')"
NEW_TYPES = "type IN ('status', 'photo', 'geo', 'comment', 'chat')"


def _retype_history(types: str) -> None:
    with op.batch_alter_table("task_events") as batch_op:
        batch_op.drop_constraint(op.f("ck_task_events_type"), type_="check")
        batch_op.create_check_constraint("type", types)
    if op.get_context().dialect.name == "sqlite":
        # SQLite's batch mode rebuilt the table and lost the index's DESC.
        op.drop_index("ix_task_events_task_ts_status", table_name="task_events")
        op.create_index(
            "ix_task_events_task_ts_status",
            "task_events",
            ["task_id_b24", sa.text("ts DESC")],
            sqlite_where=sa.text("type = 'status'"),
        )


def upgrade() -> None:
    op.create_table(
        "chat_sessions",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("b24_session_id", sa.BigInteger(), nullable=False),
        sa.Column("line_id", sa.Integer(), nullable=True),
        sa.Column("connector", sa.String(length=64), nullable=True),
        sa.Column("chat_id", sa.BigInteger(), nullable=True),
        sa.Column("user_code", sa.String(length=255), nullable=True),
        sa.Column("crm_entity", sa.String(length=32), nullable=True),
        sa.Column("crm_activity_id", sa.BigInteger(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stored_message_id", sa.BigInteger(), nullable=False),
        sa.Column("seen_message_id", sa.BigInteger(), nullable=False),
        sa.Column("read_due", sa.Boolean(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_chat_sessions_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_sessions")),
        sa.UniqueConstraint("b24_session_id", name=op.f("uq_chat_sessions_b24_session_id")),
    )
    op.create_index("ix_chat_sessions_chat_id", "chat_sessions", ["chat_id"])
    op.create_index("ix_chat_sessions_status_checked", "chat_sessions", ["status", "checked_at"])
    op.create_index("ix_chat_sessions_line_opened", "chat_sessions", ["line_id", "opened_at"])
    op.create_index("ix_chat_sessions_opened", "chat_sessions", ["opened_at"])
    op.create_table(
        "chat_messages",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("b24_message_id", sa.BigInteger(), nullable=False),
        sa.Column("session_id", BIGINT_PK, nullable=False),
        sa.Column("sender_kind", sa.String(length=16), nullable=False),
        sa.Column("sender_id", sa.BigInteger(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("text_bbcode", sa.Text(), nullable=False),
        sa.Column("text_plain", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "sender_kind IN ('client', 'operator', 'bot', 'system')",
            name=op.f("ck_chat_messages_sender_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["chat_sessions.id"],
            name=op.f("fk_chat_messages_session_id_chat_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_messages")),
        sa.UniqueConstraint("b24_message_id", name=op.f("uq_chat_messages_b24_message_id")),
    )
    op.create_index("ix_chat_messages_session_ts", "chat_messages", ["session_id", "ts"])
    op.create_index("ix_chat_messages_ts", "chat_messages", ["ts"])
    op.create_table(
        "chat_links",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("session_id", BIGINT_PK, nullable=False),
        sa.Column("target_kind", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("found_by", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "target_kind IN ('return', 'instant_order', 'delivery', 'deal')",
            name=op.f("ck_chat_links_target_kind"),
        ),
        sa.CheckConstraint(
            "found_by IN ('mention', 'crm_binding', 'manual')",
            name=op.f("ck_chat_links_found_by"),
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["chat_sessions.id"],
            name=op.f("fk_chat_links_session_id_chat_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_links")),
        sa.UniqueConstraint(
            "session_id",
            "target_kind",
            "target_id",
            name=op.f("uq_chat_links_session_id_target_kind_target_id"),
        ),
    )
    op.create_index("ix_chat_links_target", "chat_links", ["target_kind", "target_id"])
    _retype_history(NEW_TYPES)


def downgrade() -> None:
    op.execute("DELETE FROM task_events WHERE type = 'chat'")
    _retype_history(OLD_TYPES)
    op.drop_table("chat_links")
    op.drop_table("chat_messages")
    op.drop_table("chat_sessions")
