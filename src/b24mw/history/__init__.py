"""Task history (``task_events``) and the exchange log (``integration_log``).

Both are written in the caller's transaction (STYLE §3): a change, its history
row, its log row and its outbox jobs commit or roll back together.
"""
