"""Outgoing events: what the portal POSTs to the handlers bound to it."""
