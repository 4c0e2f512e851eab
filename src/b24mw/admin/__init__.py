"""Operations API (SPEC §4.6): the dead-letter queue, outbox state, throttle state."""
