"""Operational tables: idempotency, inbox, outbox, throttle state, archive manifest."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from b24mw.models.base import Base, BigIntPK, EnumString, in_list, utcnow
from b24mw.models.enums import (
    IdempotencyState,
    InboxStatus,
    JobKind,
    ManifestStatus,
    OutboxStatus,
    values,
)


class IdempotencyKey(Base):
    __tablename__ = "idempotency_key"
    __table_args__ = (
        CheckConstraint(in_list("state", values(IdempotencyState)), name="state"),
        Index("ix_idempotency_key_expires_at", "expires_at"),
    )

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(255), primary_key=True)
    actor_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[IdempotencyState] = mapped_column(
        EnumString(IdempotencyState, 16), default=IdempotencyState.IN_FLIGHT
    )
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_headers: Mapped[dict[str, str] | None] = mapped_column(JSON)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    request_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class WebhookInbox(Base):
    __tablename__ = "webhook_inbox"
    __table_args__ = (
        CheckConstraint(in_list("status", values(InboxStatus)), name="status"),
        Index("ix_webhook_inbox_status_next", "status", "next_attempt_at"),
        Index("ix_webhook_inbox_task_id_b24", "task_id_b24"),
        Index("ix_webhook_inbox_digest", "digest"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True)
    # SHA-256 of what identifies the event's content: the signed material
    # (hmac) or the body without ``auth`` (token).  Identical content is how
    # two changes of one task in one second look; see ``webhooks.service``.
    digest: Mapped[str | None] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(64))
    task_id_b24: Mapped[int | None] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[InboxStatus] = mapped_column(
        EnumString(InboxStatus, 16), default=InboxStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    errors: Mapped[list[Any]] = mapped_column(JSON, default=list)
    request_id: Mapped[str | None] = mapped_column(String(128))
    source_ip: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]


class OutboxJob(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint(in_list("status", values(OutboxStatus)), name="status"),
        CheckConstraint(in_list("kind", values(JobKind)), name="kind"),
        Index("ix_outbox_status_next", "status", "next_attempt_at"),
        Index("ix_outbox_ordering_key_id", "ordering_key", "id"),
        Index("ix_outbox_status_lease_until", "status", "lease_until"),
        # The dead-letter queue, most recently failed first (migration 0012).
        Index(
            "ix_outbox_dead_finished",
            "finished_at",
            "id",
            postgresql_where=text("status = 'dead'"),
            sqlite_where=text("status = 'dead'"),
        ),
        Index(
            "ix_outbox_dead_kind_finished",
            "kind",
            "finished_at",
            "id",
            postgresql_where=text("status = 'dead'"),
            sqlite_where=text("status = 'dead'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    kind: Mapped[JobKind] = mapped_column(EnumString(JobKind, 32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    ordering_key: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[OutboxStatus] = mapped_column(
        EnumString(OutboxStatus, 16), default=OutboxStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    leased_by: Mapped[str | None] = mapped_column(String(128))
    last_error: Mapped[str | None] = mapped_column(Text)
    error_history: Mapped[list[Any]] = mapped_column(JSON, default=list)
    result: Mapped[Any | None] = mapped_column(JSON)
    request_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None]
    # The last send may have reached Bitrix24 (timeout, 5xx, lost lease): a job with a
    # marker is looked up before it is sent again.
    outcome_unknown: Mapped[bool] = mapped_column(default=False)
    discarded_at: Mapped[datetime | None]
    discarded_by: Mapped[str | None] = mapped_column(String(128))


class RateLimitState(Base):
    """One row per Bitrix24 portal, shared by every process (docs/outbound.md "Throttle")."""

    __tablename__ = "rate_limit_state"

    portal: Mapped[str] = mapped_column(String(255), primary_key=True)
    rate_per_s: Mapped[float] = mapped_column(Float)
    tokens: Mapped[float] = mapped_column(Float)
    refilled_at: Mapped[datetime] = mapped_column(default=utcnow)
    paused_until: Mapped[datetime | None]
    success_streak: Mapped[int] = mapped_column(Integer, default=0)
    window: Mapped[list[float]] = mapped_column(JSON, default=list)
    blocked_methods: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # method -> the unix time of the operating_reset_at its last success gave (0011).
    operating_resets: Mapped[dict[str, float]] = mapped_column(
        JSON, default=dict, server_default="{}"
    )
    limited_at: Mapped[datetime | None]
    limited_total: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ArchiveManifest(Base):
    """One verified archive part (docs/retention.md; migration 0010).  The row
    is written in the transaction that deletes the part's rows, so a row here
    means "these ids are gone from the table and readable in ``object_key``"."""

    __tablename__ = "archive_manifest"
    __table_args__ = (
        UniqueConstraint("table_name", "day", "part"),
        CheckConstraint(in_list("status", values(ManifestStatus)), name="status"),
        Index("ix_archive_manifest_day", "day"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    table_name: Mapped[str] = mapped_column(String(64))
    day: Mapped[date] = mapped_column(Date)
    part: Mapped[int] = mapped_column(Integer)
    object_key: Mapped[str] = mapped_column(String(512))
    row_count: Mapped[int] = mapped_column(Integer)
    first_id: Mapped[int] = mapped_column(BigInteger)
    last_id: Mapped[int] = mapped_column(BigInteger)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    schema_revision: Mapped[str] = mapped_column(String(32))
    status: Mapped[ManifestStatus] = mapped_column(
        EnumString(ManifestStatus, 16), default=ManifestStatus.VERIFIED
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    verified_at: Mapped[datetime | None]
    restored_at: Mapped[datetime | None]


class JobLease(Base):
    """A job that must run once at a time across every worker and machine
    (the daily retention run): whoever holds an unexpired lease runs it."""

    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None]
    last_started_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_failure_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
