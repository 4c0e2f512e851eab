"""Operations API: the dead-letter queue, outbox state, throttle state.

README "Resources"; docs/operations.md "The DLQ runbook".
"""
