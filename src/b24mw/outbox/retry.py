"""The retry schedule: 10 s → 30 s → 2 min → 10 min (±10 % jitter), then the DLQ."""

from __future__ import annotations

import random
from dataclasses import dataclass

from b24mw.settings import Settings


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    delays: tuple[float, ...] = (10.0, 30.0, 120.0, 600.0)
    jitter: float = 0.1

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(delays=tuple(settings.outbox_retry_delay_list))

    @property
    def max_attempts(self) -> int:
        return len(self.delays) + 1

    def delay_after(self, attempts: int) -> float | None:
        """Seconds before the next attempt once ``attempts`` have failed; None: dead."""
        if attempts < 1 or attempts > len(self.delays):
            return None
        base = self.delays[attempts - 1]
        # Jitter spreads the retries of a failed batch so they do not return as one burst.
        return base * random.uniform(1.0 - self.jitter, 1.0 + self.jitter)
