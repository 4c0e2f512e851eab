"""Prometheus metrics of the outbound engine (docs/outbound.md "Metrics").

Counters move as the worker works; the gauges (depth, oldest due, DLQ) are
refreshed by the worker every ``B24MW_OUTBOX_METRICS_INTERVAL_S``.  The
limiter's own metrics live with it, in ``bitrix24.metrics``.
``b24mw worker --metrics-port`` exposes both.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from b24mw.models.enums import OutboxStatus

OUTBOUND_CALLS = Counter(
    "b24mw_outbound_calls_total",
    "Outbound exchanges by system (b24, events, 1c), method or endpoint, and outcome",
    ["system", "method", "outcome"],
)
OUTBOX_DEPTH = Gauge("b24mw_outbox_jobs", "Outbox jobs by status", ["status"])
OUTBOX_OLDEST_DUE_AGE = Gauge(
    "b24mw_outbox_oldest_due_age_seconds", "Age of the oldest job that is due and not running"
)
DLQ_SIZE = Gauge("b24mw_outbox_dlq_size", "Dead jobs waiting for an operator")


def outbound(system: str, method: str, outcome: str, count: int = 1) -> None:
    OUTBOUND_CALLS.labels(system, method, outcome).inc(count)


def queue_state(counts: dict[str, int], oldest_due_age_s: float | None) -> None:
    for status in OutboxStatus:
        OUTBOX_DEPTH.labels(status.value).set(counts.get(status, 0))
    DLQ_SIZE.set(counts.get(OutboxStatus.DEAD, 0))
    OUTBOX_OLDEST_DUE_AGE.set(oldest_due_age_s or 0.0)
