"""Inbound Bitrix24 events: the signed endpoint and durable inbox (API side),
the inbox processor and reconciliation (worker side, registered by name in
``b24mw.registry``)."""
