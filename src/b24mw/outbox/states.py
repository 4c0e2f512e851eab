"""How a job moves between ``pending``, ``in_flight``, ``done`` and ``dead``.

``attempts`` counts sends: it grows when a job is claimed, and a claim that
never reached the wire (our own limiter said "later", the method was blocked,
the worker shut down first) gives the attempt back.  ``error_history`` keeps
every failed attempt with its error and request id, across DLQ replays.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from b24mw.models.base import utcnow
from b24mw.models.enums import OutboxStatus
from b24mw.models.ops import OutboxJob
from b24mw.outbox.retry import RetryPolicy

PENDING = OutboxStatus.PENDING
IN_FLIGHT = OutboxStatus.IN_FLIGHT
DONE = OutboxStatus.DONE
DEAD = OutboxStatus.DEAD


def _append(job: OutboxJob, entry: dict[str, Any]) -> None:
    # Reassign: SQLAlchemy does not see in-place changes to a JSON list.
    job.error_history = [*(job.error_history or []), entry]


def claim(job: OutboxJob, worker_id: str, now: datetime, lease_s: float) -> None:
    if job.status == IN_FLIGHT:
        # The previous holder's lease ran out: it may have sent the job before dying.
        job.outcome_unknown = True
    job.status = IN_FLIGHT
    job.leased_by = worker_id
    job.lease_until = now + timedelta(seconds=lease_s)
    job.attempts += 1


def defer(job: OutboxJob, until: datetime, *, claimed: bool = True) -> None:
    """Back to the queue without spending an attempt (``claimed`` but never sent)."""
    if job.status == IN_FLIGHT and not claimed:
        job.outcome_unknown = True
    if claimed:
        job.attempts = max(0, job.attempts - 1)
    job.status = PENDING
    job.next_attempt_at = until
    job.lease_until = None
    job.leased_by = None


def done(job: OutboxJob, result: Any) -> None:
    job.status = DONE
    job.result = result
    job.outcome_unknown = False
    job.finished_at = utcnow()
    # leased_by stays: which worker delivered (or buried) the job.
    job.lease_until = None


def failure_entry(
    job: OutboxJob,
    *,
    code: str | None,
    error: str,
    http_status: int | None = None,
    exchange_request_id: str | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "at": utcnow().isoformat(),
        "attempt": job.attempts,
        "request_id": job.request_id,
        "code": code,
        "error": error,
        "http_status": http_status,
    }
    if exchange_request_id and exchange_request_id != job.request_id:
        entry["exchange_request_id"] = exchange_request_id
    return entry


def dead(job: OutboxJob, entry: dict[str, Any]) -> None:
    entry["outcome"] = "dead"
    _append(job, entry)
    job.status = DEAD
    job.last_error = entry["error"]
    job.finished_at = utcnow()
    job.lease_until = None


def fail(
    job: OutboxJob,
    entry: dict[str, Any],
    policy: RetryPolicy,
    *,
    not_before: datetime | None = None,
    unknown: bool = False,
    settle_s: float = 0.0,
) -> str:
    """A retryable failure: the next step of the schedule, or the DLQ when spent.

    ``unknown``: this send may have run.  The portal may still be running it,
    so the next attempt (the lookup) waits ``settle_s`` from now at least; a
    job that dies here keeps that time for a DLQ replay.
    """
    now = utcnow()
    if unknown:
        job.outcome_unknown = True
        settled = now + timedelta(seconds=settle_s)
        not_before = settled if not_before is None else max(not_before, settled)
    delay = policy.delay_after(job.attempts)
    if delay is None:
        entry["error"] = f"{entry['error']} (gave up after {job.attempts} attempts)"
        if unknown and not_before is not None:
            job.next_attempt_at = not_before
        dead(job, entry)
        return DEAD
    at = now + timedelta(seconds=delay)
    if not_before is not None and not_before > at:
        at = not_before
    entry["outcome"] = "retry"
    entry["next_attempt_at"] = at.isoformat()
    _append(job, entry)
    job.status = PENDING
    job.last_error = entry["error"]
    job.next_attempt_at = at
    job.lease_until = None
    job.leased_by = None
    return PENDING


def recheck(job: OutboxJob) -> None:
    """The unknown-outcome lookup found nothing: send again now, as the same attempt."""
    job.outcome_unknown = False
    defer(job, utcnow())


def replay(job: OutboxJob, actor: str) -> None:
    """Out of the DLQ as a fresh job; history stays.  A job whose last send
    may have run keeps the earliest time it may be looked up (``fail``)."""
    now = utcnow()
    _append(job, {"at": now.isoformat(), "event": "replayed", "by": actor})
    job.status = PENDING
    job.attempts = 0
    job.next_attempt_at = max(now, job.next_attempt_at) if job.outcome_unknown else now
    job.finished_at = None
    job.lease_until = None
    job.leased_by = None


def discard(job: OutboxJob, actor: str) -> None:
    """Closed by an operator without delivery; kept for the record."""
    now = utcnow()
    _append(job, {"at": now.isoformat(), "event": "discarded", "by": actor})
    job.status = DONE
    job.discarded_at = now
    job.discarded_by = actor
    job.finished_at = now
