"""Webhook counters (docs/operations.md "Metrics": accepted / duplicate / rejected by reason)."""

from __future__ import annotations

from prometheus_client import Counter

WEBHOOKS = Counter(
    "b24mw_webhooks_total",
    "Inbound webhooks by outcome (accepted, duplicate, rejected) and reason"
    " (a rejection's, or 'coalesced' for a duplicate folded into a pending row)",
    ["outcome", "reason"],
)
INBOX_PROCESSED = Counter(
    "b24mw_webhook_inbox_processed_total",
    "Inbox rows finished by the worker, by final status",
    ["status"],
)


def count(outcome: str, reason: str = "") -> None:
    WEBHOOKS.labels(outcome, reason).inc()
