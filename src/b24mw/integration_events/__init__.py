"""CloudEvents 1.0 that b24mw publishes (docs/outbound.md "Events and 1C")."""
