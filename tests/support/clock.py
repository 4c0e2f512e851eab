"""A clock that tests move by hand, for code that takes ``clock=``."""

from __future__ import annotations

import time


class Clock:
    """A clock that moves only when told (``advance``)."""

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
