"""Inbound Bitrix24 events: the signed endpoint and durable inbox (API side),
the inbox processor and reconciliation (worker side, registered here as
schedulers so ``b24mw worker`` finds them through ``b24mw.app``)."""

from b24mw.webhooks import processor, reconcile

__all__ = ["processor", "reconcile"]
