"""Prometheus metrics shared by the API and the worker (docs/operations.md "Metrics")."""

from __future__ import annotations

import functools

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

HTTP_REQUESTS = Counter(
    "b24mw_http_requests_total",
    "HTTP requests by route template and status",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "b24mw_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


@functools.cache
def _series(method: str, route: str, status: int) -> tuple[Counter, Histogram]:
    # ``labels()`` takes a lock and builds its key on every call; the series
    # of one route template and status are the same objects for the life of
    # the process (templates, not raw paths: a bounded set).
    return HTTP_REQUESTS.labels(method, route, str(status)), HTTP_LATENCY.labels(method, route)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    requests, latency = _series(method, route, status)
    requests.inc()
    latency.observe(seconds)


def render() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
