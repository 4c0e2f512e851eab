from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from b24mw.kit.schemas import ReadModel, UtcOut
from b24mw.models.enums import JobKind, OutboxStatus


class OutboxJobSummary(ReadModel):
    id: int
    kind: JobKind
    status: OutboxStatus
    ordering_key: str | None
    attempts: int
    last_error: str | None
    request_id: str | None
    created_at: UtcOut
    finished_at: UtcOut | None


class OutboxJobRead(OutboxJobSummary):
    payload: dict[str, Any]
    next_attempt_at: UtcOut
    lease_until: UtcOut | None
    leased_by: str | None
    outcome_unknown: bool
    error_history: list[dict[str, Any]]
    result: Any | None
    updated_at: UtcOut
    discarded_at: UtcOut | None
    discarded_by: str | None


class OldestDue(BaseModel):
    id: int
    kind: JobKind
    ordering_key: str | None
    next_attempt_at: UtcOut
    age_s: float
    attempts: int


class OutboxState(BaseModel):
    counts: dict[str, int]
    due_now: int
    oldest_due: OldestDue | None


class ThrottleState(BaseModel):
    configured: bool
    portal: str | None = None
    rate_per_s: float | None = None
    configured_rps: float
    configured_rpm: int
    burst: int
    floor_per_s: float | None = None
    tokens: float | None = None
    next_slot_in_s: float | None = None
    requests_last_1s: int = 0
    requests_last_60s: int = 0
    paused_until: UtcOut | None = None
    limited_total: int = 0
    last_limited_at: UtcOut | None = None
    blocked_methods: dict[str, UtcOut] = {}
