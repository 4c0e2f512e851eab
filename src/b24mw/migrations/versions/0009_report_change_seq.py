"""reports: the change sequence of both order tables, for the KMP4 export
cursor; an order's history indexed in time order, for the report's durations

Every insert and update of ``instant_orders`` and ``orders`` stamps the row's
``change_seq`` in a trigger, so no write path can forget it:

- PostgreSQL: the writing transaction's id (``pg_current_xact_id()``).  The
  export reads only rows whose id is below the oldest transaction still
  running, so a transaction that commits late can never land behind a cursor
  that was already handed out (``reports/changes.py``).
- SQLite: a counter bumped in the write transaction; writers are serialised
  (``BEGIN IMMEDIATE``), so counter order is commit order.

The single-column indexes of ``task_events`` on ``instant_order_id`` and
``order_id`` become ``(..., ts)`` with ``type`` and ``status`` included (on
PostgreSQL): the same lookups, plus an index-only answer to "first event and
final status of this order".

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TABLES = ("instant_orders", "orders")

PG_FUNCTION = """
CREATE FUNCTION b24mw_stamp_change_seq() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.change_seq := pg_current_xact_id()::text::bigint;
    RETURN NEW;
END
$$
"""

SQLITE_BUMP = """
    INSERT OR IGNORE INTO change_counter (id, value) VALUES (1, 0);
    UPDATE change_counter SET value = value + 1 WHERE id = 1;
    UPDATE {table} SET change_seq = (SELECT value FROM change_counter WHERE id = 1)
    WHERE id = NEW.id;
"""


def _sqlite_triggers(table: str) -> list[str]:
    bump = SQLITE_BUMP.format(table=table)
    return [
        f"CREATE TRIGGER {table}_change_seq_insert AFTER INSERT ON {table}\nBEGIN{bump}END",
        # The trigger's own UPDATE changes change_seq, so it does not fire again.
        f"CREATE TRIGGER {table}_change_seq_update AFTER UPDATE ON {table}\n"
        f"WHEN NEW.change_seq IS OLD.change_seq\nBEGIN{bump}END",
    ]


def upgrade() -> None:
    op.create_table(
        "change_counter",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_counter")),
    )
    for table in TABLES:
        op.add_column(table, sa.Column("change_seq", sa.BigInteger(), nullable=True))
        op.create_index(f"ix_{table}_change_seq", table, ["change_seq", "id"], unique=False)

    with op.batch_alter_table("task_events", schema=None) as batch_op:
        for column in ("instant_order_id", "order_id"):
            batch_op.drop_index(f"ix_task_events_{column}")
            batch_op.create_index(
                f"ix_task_events_{column.removesuffix('_id')}_ts",
                [column, "ts"],
                unique=False,
                postgresql_include=["type", "status"],
            )

    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_change_seq BEFORE INSERT OR UPDATE ON {table}"
                " FOR EACH ROW EXECUTE FUNCTION b24mw_stamp_change_seq()"
            )
            # Existing rows: stamped by the trigger with this migration's id.
            op.execute(f"UPDATE {table} SET change_seq = 0")
    else:
        # Existing rows in id order, deliveries after orders; the counter
        # continues from there.
        op.execute("UPDATE instant_orders SET change_seq = id")
        op.execute(
            "UPDATE orders SET change_seq = id + (SELECT coalesce(max(id), 0) FROM instant_orders)"
        )
        op.execute(
            "INSERT INTO change_counter (id, value) SELECT 1, coalesce(max(s), 0) FROM"
            " (SELECT max(change_seq) AS s FROM instant_orders"
            "  UNION ALL SELECT max(change_seq) FROM orders)"
        )
        for table in TABLES:
            for statement in _sqlite_triggers(table):
                op.execute(statement)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in TABLES:
        if postgres:
            op.execute(f"DROP TRIGGER {table}_change_seq ON {table}")
        else:
            op.execute(f"DROP TRIGGER {table}_change_seq_insert")
            op.execute(f"DROP TRIGGER {table}_change_seq_update")
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_change_seq")
            batch_op.drop_column("change_seq")
    if postgres:
        op.execute("DROP FUNCTION b24mw_stamp_change_seq()")
    op.drop_table("change_counter")
    with op.batch_alter_table("task_events", schema=None) as batch_op:
        for column in ("instant_order_id", "order_id"):
            batch_op.drop_index(f"ix_task_events_{column.removesuffix('_id')}_ts")
            batch_op.create_index(f"ix_task_events_{column}", [column], unique=False)
