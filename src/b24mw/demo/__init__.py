"""``b24mw demo``: the integration's flows played end to end on a fresh
embedded database, narrated and checked (``command.py``)."""
