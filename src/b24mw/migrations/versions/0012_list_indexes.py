"""list indexes: every list of the API read from an index in its sort order

Lists page by cursor (issue 19): each filter the API offers, with the list's
order, is one index range.  By status (with or without a courier) the
existing ``(status, created_at)`` and ``(courier_id, status, created_at)``
serve; these add the lists without a status, newest first, and the
dead-letter queue (partial: dead jobs only, a small part of the outbox).

On PostgreSQL, ``q`` (orders, deliveries) gets a trigram index (the
``pg_trgm`` extension, trusted since PostgreSQL 13: the database owner may
create it) on the very expression the search matches
(``lifecycle.repository.search_text``); SQLite filters along the list's
order, and so does the courier directory's ``q`` (a few thousand rows at
most: a scan is its best plan).

Building them reads each table once; PostgreSQL blocks writes to a table
while its index is built (seconds per million rows).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

DEAD = sa.text("status = 'dead'")
ORDER_TABLES = ("returns", "instant_orders", "orders")
# What ``q`` looks into, joined as lifecycle.repository.search_text joins it
# (the planner uses the index only for the identical expression).
SEARCHED = {
    "instant_orders": "(((lower(title) || ' ') || lower(customer_name)) || ' ')"
    " || coalesce(client_phone, '')",
    "orders": "(((((lower(external_id_1c) || ' ') || lower(title)) || ' ')"
    " || lower(customer_name)) || ' ') || coalesce(client_phone, '')",
}


def upgrade() -> None:
    for table in ORDER_TABLES:
        op.create_index(f"ix_{table}_created_id", table, ["created_at", "id"])
        op.create_index(f"ix_{table}_courier_created_id", table, ["courier_id", "created_at", "id"])
    op.create_index(
        "ix_outbox_dead_finished",
        "outbox",
        ["finished_at", "id"],
        postgresql_where=DEAD,
        sqlite_where=DEAD,
    )
    op.create_index(
        "ix_outbox_dead_kind_finished",
        "outbox",
        ["kind", "finished_at", "id"],
        postgresql_where=DEAD,
        sqlite_where=DEAD,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for table, text in SEARCHED.items():
            op.execute(
                f"CREATE INDEX ix_{table}_search ON {table} USING gin (({text}) gin_trgm_ops)"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in SEARCHED:
            op.execute(f"DROP INDEX ix_{table}_search")
    op.drop_index("ix_outbox_dead_kind_finished", table_name="outbox")
    op.drop_index("ix_outbox_dead_finished", table_name="outbox")
    for table in reversed(ORDER_TABLES):
        op.drop_index(f"ix_{table}_courier_created_id", table_name=table)
        op.drop_index(f"ix_{table}_created_id", table_name=table)
