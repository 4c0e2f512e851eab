"""Prometheus metrics of the outbound engine (docs/outbound.md "Metrics").

Counters move as the worker works; the gauges (depth, oldest due, DLQ, rate)
are refreshed by the worker every ``B24MW_OUTBOX_METRICS_INTERVAL_S`` and on
every throttle decision.  ``b24mw worker --metrics-port`` exposes them.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
THROTTLE_WAITS = Counter(
    "b24mw_throttle_waits_total", "Times a worker waited for, or was deferred by, the limiter"
)
THROTTLE_WAIT_SECONDS = Histogram(
    "b24mw_throttle_wait_seconds",
    "Time spent waiting for a Bitrix24 request slot",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
THROTTLE_RATE = Gauge("b24mw_throttle_rate_per_second", "Current shared Bitrix24 request rate")
THROTTLE_LIMITED = Counter(
    "b24mw_throttle_query_limit_total", "QUERY_LIMIT_EXCEEDED answers seen by this process"
)


def outbound(system: str, method: str, outcome: str, count: int = 1) -> None:
    OUTBOUND_CALLS.labels(system, method, outcome).inc(count)


def throttle_wait(seconds: float) -> None:
    if seconds > 0:
        THROTTLE_WAITS.inc()
        THROTTLE_WAIT_SECONDS.observe(seconds)


def queue_state(counts: dict[str, int], oldest_due_age_s: float | None) -> None:
    for status in ("pending", "in_flight", "done", "dead"):
        OUTBOX_DEPTH.labels(status).set(counts.get(status, 0))
    DLQ_SIZE.set(counts.get("dead", 0))
    OUTBOX_OLDEST_DUE_AGE.set(oldest_due_age_s or 0.0)
