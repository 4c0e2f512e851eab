"""CloudEvents 1.0 that b24mw publishes (SPEC §6)."""
