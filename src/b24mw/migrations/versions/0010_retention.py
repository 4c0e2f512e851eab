"""retention: archive parts in archive_manifest, job leases

``archive_manifest`` (0001) had one row per table and day; an archive day is
written in parts (bounded memory, short transactions), each with its id range,
size and the schema revision it was written under.  No code before this
revision wrote to the table, so it is recreated rather than altered.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.drop_table("archive_manifest")
    op.create_table(
        "archive_manifest",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("object_key", sa.String(length=512), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("first_id", sa.BigInteger(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("schema_revision", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("restored_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('verified', 'restored')", name=op.f("ck_archive_manifest_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_archive_manifest")),
        sa.UniqueConstraint(
            "table_name", "day", "part", name=op.f("uq_archive_manifest_table_name_day_part")
        ),
    )
    op.create_index("ix_archive_manifest_day", "archive_manifest", ["day"], unique=False)
    op.create_table(
        "job_leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_leases")),
    )


def downgrade() -> None:
    op.drop_table("job_leases")
    op.drop_index("ix_archive_manifest_day", table_name="archive_manifest")
    op.drop_table("archive_manifest")
    op.create_table(
        "archive_manifest",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
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
