"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 23:32:52.888256
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "archive_manifest",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("object_key", sa.String(length=512), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('written', 'verified', 'restored')", name=op.f("ck_archive_manifest_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_archive_manifest")),
        sa.UniqueConstraint("table_name", "day", name=op.f("uq_archive_manifest_table_name_day")),
    )
    op.create_table(
        "couriers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=12), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("b24_user_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "phone IS NULL OR (length(phone) = 12 AND substr(phone, 1, 2) = '+7')",
            name=op.f("ck_couriers_phone_format"),
        ),
        sa.CheckConstraint(
            "length(trim(display_name)) > 0", name=op.f("ck_couriers_display_name_not_blank")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_couriers")),
        sa.UniqueConstraint("b24_user_id", name=op.f("uq_couriers_b24_user_id")),
    )
    op.create_table(
        "idempotency_key",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("endpoint", sa.String(length=255), nullable=False),
        sa.Column("actor_id", sa.String(length=128), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_headers", sa.JSON(), nullable=True),
        sa.Column("response_body", sa.LargeBinary(), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("state IN ('in_flight', 'done')", name=op.f("ck_idempotency_key_state")),
        sa.PrimaryKeyConstraint("key", "endpoint", "actor_id", name=op.f("pk_idempotency_key")),
    )
    with op.batch_alter_table("idempotency_key", schema=None) as batch_op:
        batch_op.create_index("ix_idempotency_key_expires_at", ["expires_at"], unique=False)

    op.create_table(
        "integration_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("system", sa.String(length=16), nullable=False),
        sa.Column("endpoint", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("http_code", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("resource_ref", sa.String(length=128), nullable=True),
        sa.Column("request_json", sa.JSON(), nullable=True),
        sa.Column("response_json", sa.JSON(), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("retry_count", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "direction IN ('in', 'out', 'internal')", name=op.f("ck_integration_log_direction")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integration_log")),
    )
    with op.batch_alter_table("integration_log", schema=None) as batch_op:
        batch_op.create_index("ix_integration_log_request_id", ["request_id"], unique=False)
        batch_op.create_index(
            "ix_integration_log_resource_ts", ["resource_ref", "ts"], unique=False
        )
        batch_op.create_index(
            "ix_integration_log_system_status_ts", ["system", "status", "ts"], unique=False
        )
        batch_op.create_index("ix_integration_log_ts", ["ts"], unique=False)

    op.create_table(
        "outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("ordering_key", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("leased_by", sa.String(length=128), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("error_history", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "kind IN ('b24.call', 'event.publish', 'onec.push')", name=op.f("ck_outbox_kind")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'in_flight', 'done', 'dead')", name=op.f("ck_outbox_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_ordering_key_id", ["ordering_key", "id"], unique=False)
        batch_op.create_index("ix_outbox_status_next", ["status", "next_attempt_at"], unique=False)

    op.create_table(
        "rate_limit_state",
        sa.Column("portal", sa.String(length=255), nullable=False),
        sa.Column("rate_per_s", sa.Float(), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("refilled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paused_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("success_streak", sa.Integer(), nullable=False),
        sa.Column("window", sa.JSON(), nullable=False),
        sa.Column("blocked_methods", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("portal", name=op.f("pk_rate_limit_state")),
    )
    op.create_table(
        "returns",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("courier_id", sa.String(length=64), nullable=False),
        sa.Column("order_id_1c", sa.String(length=64), nullable=True),
        sa.Column("task_id_b24", sa.BigInteger(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("manager_id", sa.String(length=64), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "source IN ('widget', 'call_center', 'warehouse')", name=op.f("ck_returns_source")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'accepted', 'rejected', 'cancelled')",
            name=op.f("ck_returns_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_returns")),
    )
    with op.batch_alter_table("returns", schema=None) as batch_op:
        batch_op.create_index(
            "ix_returns_courier_status_created",
            ["courier_id", "status", "created_at"],
            unique=False,
        )
        batch_op.create_index("ix_returns_status_created", ["status", "created_at"], unique=False)

    op.create_table(
        "webhook_inbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("dedupe_key", sa.String(length=160), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("task_id_b24", sa.BigInteger(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("source_ip", sa.String(length=64), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'processing', 'done', 'rejected', 'failed')",
            name=op.f("ck_webhook_inbox_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_inbox")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_webhook_inbox_dedupe_key")),
    )
    with op.batch_alter_table("webhook_inbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_inbox_status_next", ["status", "next_attempt_at"], unique=False
        )
        batch_op.create_index("ix_webhook_inbox_task_id_b24", ["task_id_b24"], unique=False)

    op.create_table(
        "instant_orders",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("task_id_b24", sa.BigInteger(), nullable=True),
        sa.Column("courier_id", sa.String(length=64), nullable=True),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("customer_name", sa.String(length=255), nullable=False),
        sa.Column("client_phone", sa.String(length=12), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total_amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("currency_code", sa.String(length=3), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "client_phone IS NULL OR (length(client_phone) = 12 AND substr(client_phone, 1, 2) = '+7')",
            name=op.f("ck_instant_orders_client_phone_format"),
        ),
        sa.CheckConstraint(
            "origin IN ('api', 'b24_task', 'b24_comment')", name=op.f("ck_instant_orders_origin")
        ),
        sa.CheckConstraint(
            "status IN ('NEW', 'PICKING', 'READY', 'PICKED_UP', 'ON_ROUTE', 'DELIVERED', 'CASH_RETURNED', 'DONE', 'REFUSED', 'FAILED')",
            name=op.f("ck_instant_orders_status"),
        ),
        sa.CheckConstraint(
            "length(currency_code) = 3", name=op.f("ck_instant_orders_currency_code")
        ),
        sa.CheckConstraint("total_amount >= 0", name=op.f("ck_instant_orders_total_non_negative")),
        sa.ForeignKeyConstraint(
            ["courier_id"], ["couriers.id"], name=op.f("fk_instant_orders_courier_id_couriers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instant_orders")),
    )
    with op.batch_alter_table("instant_orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_instant_orders_courier_status_created",
            ["courier_id", "status", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_instant_orders_status_created", ["status", "created_at"], unique=False
        )
        batch_op.create_index(
            "uq_instant_orders_task_courier", ["task_id_b24", "courier_id"], unique=True
        )

    op.create_table(
        "orders",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("external_id_1c", sa.String(length=64), nullable=False),
        sa.Column("task_id_b24", sa.BigInteger(), nullable=True),
        sa.Column("courier_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("customer_name", sa.String(length=255), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("client_phone", sa.String(length=12), nullable=True),
        sa.Column("cod_amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("delivery_price", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("total_amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("currency_code", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "client_phone IS NULL OR (length(client_phone) = 12 AND substr(client_phone, 1, 2) = '+7')",
            name=op.f("ck_orders_client_phone_format"),
        ),
        sa.CheckConstraint(
            "status IN ('NEW', 'PICKING', 'READY', 'PICKED_UP', 'ON_ROUTE', 'DELIVERED', 'CASH_RETURNED', 'DONE', 'REFUSED', 'FAILED')",
            name=op.f("ck_orders_status"),
        ),
        sa.CheckConstraint("cod_amount >= 0", name=op.f("ck_orders_cod_non_negative")),
        sa.CheckConstraint(
            "delivery_price >= 0", name=op.f("ck_orders_delivery_price_non_negative")
        ),
        sa.CheckConstraint("length(currency_code) = 3", name=op.f("ck_orders_currency_code")),
        sa.CheckConstraint("total_amount >= 0", name=op.f("ck_orders_total_non_negative")),
        sa.ForeignKeyConstraint(
            ["courier_id"], ["couriers.id"], name=op.f("fk_orders_courier_id_couriers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("external_id_1c", name=op.f("uq_orders_external_id_1c")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_orders_courier_status_created", ["courier_id", "status", "created_at"], unique=False
        )
        batch_op.create_index("ix_orders_status_created", ["status", "created_at"], unique=False)
        batch_op.create_index("ix_orders_task_id_b24", ["task_id_b24"], unique=False)

    op.create_table(
        "return_lines",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("return_id", sa.Uuid(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("quality", sa.String(length=16), nullable=False),
        sa.Column("reason_code", sa.String(length=64), nullable=False),
        sa.Column("reason_note", sa.Text(), nullable=True),
        sa.Column("photos", sa.JSON(), nullable=False),
        sa.Column("imei", sa.String(length=15), nullable=True),
        sa.Column("serial", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "quality IN ('new', 'defect', 'unknown')", name=op.f("ck_return_lines_quality")
        ),
        sa.CheckConstraint(
            "imei IS NULL OR length(imei) = 15", name=op.f("ck_return_lines_imei_length")
        ),
        sa.CheckConstraint(
            "length(trim(reason_code)) > 0", name=op.f("ck_return_lines_reason_code_not_blank")
        ),
        sa.CheckConstraint("qty > 0", name=op.f("ck_return_lines_qty_positive")),
        sa.ForeignKeyConstraint(
            ["return_id"],
            ["returns.id"],
            name=op.f("fk_return_lines_return_id_returns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_return_lines")),
    )
    with op.batch_alter_table("return_lines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_return_lines_return_id"), ["return_id"], unique=False)

    op.create_table(
        "instant_order_lines",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("price", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.CheckConstraint(
            "length(trim(sku)) > 0", name=op.f("ck_instant_order_lines_sku_not_blank")
        ),
        sa.CheckConstraint("price >= 0", name=op.f("ck_instant_order_lines_price_non_negative")),
        sa.CheckConstraint("qty > 0", name=op.f("ck_instant_order_lines_qty_positive")),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["instant_orders.id"],
            name=op.f("fk_instant_order_lines_order_id_instant_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instant_order_lines")),
    )
    with op.batch_alter_table("instant_order_lines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_instant_order_lines_order_id"), ["order_id"], unique=False
        )

    op.create_table(
        "order_lines",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("price", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.CheckConstraint("length(trim(sku)) > 0", name=op.f("ck_order_lines_sku_not_blank")),
        sa.CheckConstraint("price >= 0", name=op.f("ck_order_lines_price_non_negative")),
        sa.CheckConstraint("qty > 0", name=op.f("ck_order_lines_qty_positive")),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_lines_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_lines")),
    )
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_order_lines_order_id"), ["order_id"], unique=False)

    op.create_table(
        "task_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("task_id_b24", sa.BigInteger(), nullable=True),
        sa.Column(
            "instant_order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("return_id", sa.Uuid(), nullable=True),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=True),
        sa.Column("actor_id", sa.String(length=64), nullable=True),
        sa.Column("payload_json", sa.JSON(), nullable=False),
        sa.Column("correlation_id", sa.String(length=128), nullable=True),
        sa.Column("photo_checksum", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.CheckConstraint(
            "type IN ('status', 'photo', 'geo', 'comment')", name=op.f("ck_task_events_type")
        ),
        sa.ForeignKeyConstraint(
            ["instant_order_id"],
            ["instant_orders.id"],
            name=op.f("fk_task_events_instant_order_id_instant_orders"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_task_events_order_id_orders"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["return_id"],
            ["returns.id"],
            name=op.f("fk_task_events_return_id_returns"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_events")),
        sa.UniqueConstraint("correlation_id", name=op.f("uq_task_events_correlation_id")),
    )
    with op.batch_alter_table("task_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_task_events_instant_order_id"), ["instant_order_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_task_events_order_id"), ["order_id"], unique=False)
        batch_op.create_index("ix_task_events_photo_checksum", ["photo_checksum"], unique=False)
        batch_op.create_index(batch_op.f("ix_task_events_return_id"), ["return_id"], unique=False)
        batch_op.create_index("ix_task_events_task_type", ["task_id_b24", "type"], unique=False)
        batch_op.create_index("ix_task_events_ts", ["ts"], unique=False)
    # Status history of a task, newest first (README "Resources", ``/{id}/events``): partial on both engines.
    op.create_index(
        "ix_task_events_task_ts_status",
        "task_events",
        ["task_id_b24", sa.text("ts DESC")],
        postgresql_where=sa.text("type = 'status'"),
        sqlite_where=sa.text("type = 'status'"),
    )


def downgrade() -> None:
    op.drop_index("ix_task_events_task_ts_status", table_name="task_events")
    with op.batch_alter_table("task_events", schema=None) as batch_op:
        batch_op.drop_index("ix_task_events_ts")
        batch_op.drop_index("ix_task_events_task_type")
        batch_op.drop_index(batch_op.f("ix_task_events_return_id"))
        batch_op.drop_index("ix_task_events_photo_checksum")
        batch_op.drop_index(batch_op.f("ix_task_events_order_id"))
        batch_op.drop_index(batch_op.f("ix_task_events_instant_order_id"))

    op.drop_table("task_events")
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_lines_order_id"))

    op.drop_table("order_lines")
    with op.batch_alter_table("instant_order_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_instant_order_lines_order_id"))

    op.drop_table("instant_order_lines")
    with op.batch_alter_table("return_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_return_lines_return_id"))

    op.drop_table("return_lines")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_task_id_b24")
        batch_op.drop_index("ix_orders_status_created")
        batch_op.drop_index("ix_orders_courier_status_created")

    op.drop_table("orders")
    with op.batch_alter_table("instant_orders", schema=None) as batch_op:
        batch_op.drop_index("uq_instant_orders_task_courier")
        batch_op.drop_index("ix_instant_orders_status_created")
        batch_op.drop_index("ix_instant_orders_courier_status_created")

    op.drop_table("instant_orders")
    with op.batch_alter_table("webhook_inbox", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_inbox_task_id_b24")
        batch_op.drop_index("ix_webhook_inbox_status_next")

    op.drop_table("webhook_inbox")
    with op.batch_alter_table("returns", schema=None) as batch_op:
        batch_op.drop_index("ix_returns_status_created")
        batch_op.drop_index("ix_returns_courier_status_created")

    op.drop_table("returns")
    op.drop_table("rate_limit_state")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_status_next")
        batch_op.drop_index("ix_outbox_ordering_key_id")

    op.drop_table("outbox")
    with op.batch_alter_table("integration_log", schema=None) as batch_op:
        batch_op.drop_index("ix_integration_log_ts")
        batch_op.drop_index("ix_integration_log_system_status_ts")
        batch_op.drop_index("ix_integration_log_resource_ts")
        batch_op.drop_index("ix_integration_log_request_id")

    op.drop_table("integration_log")
    with op.batch_alter_table("idempotency_key", schema=None) as batch_op:
        batch_op.drop_index("ix_idempotency_key_expires_at")

    op.drop_table("idempotency_key")
    op.drop_table("couriers")
    op.drop_table("archive_manifest")
