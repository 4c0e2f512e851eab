"""Prometheus metrics of retention (docs/retention.md "Observability"), on the process registry that
``b24mw worker --metrics-port`` serves."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

ARCHIVED_ROWS = Counter("b24mw_archive_rows_total", "Rows archived and deleted", ["table"])
ARCHIVED_BYTES = Counter("b24mw_archive_bytes_total", "Compressed bytes archived", ["table"])
ARCHIVED_PARTS = Counter("b24mw_archive_parts_total", "Archive parts verified", ["table"])
RESTORED_ROWS = Counter("b24mw_archive_restored_rows_total", "Rows written back", ["table"])
PURGED_ROWS = Counter("b24mw_retention_purged_rows_total", "Expired rows purged", ["table"])
RUN_DURATION = Gauge("b24mw_retention_run_duration_seconds", "Duration of the last run")
LAST_SUCCESS = Gauge(
    "b24mw_retention_last_success_timestamp_seconds", "When the last run finished well"
)
LAST_FAILURE = Gauge("b24mw_retention_last_failure_timestamp_seconds", "When the last run failed")
