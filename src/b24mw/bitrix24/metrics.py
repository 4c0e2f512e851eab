"""Prometheus metrics of the shared Bitrix24 limiter (docs/outbound.md, "Metrics").

They belong to the client side: the throttle moves them on every decision,
wherever it runs.  Exchanges are counted by whoever owns the count of
outbound calls (``outbox.metrics``), handed to the gateway as ``on_exchange``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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


def throttle_wait(seconds: float) -> None:
    if seconds > 0:
        THROTTLE_WAITS.inc()
        THROTTLE_WAIT_SECONDS.observe(seconds)
