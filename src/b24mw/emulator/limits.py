"""The two Bitrix24 limits: the request-rate leaky bucket and per-method operating time."""

from __future__ import annotations

import math
from collections import deque

_EPSILON = 1e-9


class LeakyBucket:
    """Each request adds one unit; the bucket drains at `rps`; past `burst` it rejects.

    `rps <= 0` turns the limit off (benchmarks, bulk loading).
    """

    def __init__(self, rps: float, burst: float) -> None:
        self.rps = rps
        self.burst = burst
        self._level = 0.0
        self._last: float | None = None

    def configure(self, rps: float | None = None, burst: float | None = None) -> None:
        if rps is not None:
            self.rps = rps
        if burst is not None:
            self.burst = burst

    def _drain(self, now: float) -> None:
        if self._last is not None:
            elapsed = max(0.0, now - self._last)
            self._level = max(0.0, self._level - elapsed * self.rps)
        self._last = now

    def try_acquire(self, now: float) -> bool:
        if self.rps <= 0:
            return True
        self._drain(now)
        if self._level + 1 > self.burst + _EPSILON:
            return False
        self._level += 1
        return True

    def level(self, now: float) -> float:
        if self.rps > 0:
            self._drain(now)
        return self._level

    def reset(self) -> None:
        self._level = 0.0
        self._last = None


class OperatingTracker:
    """Execution seconds per method over a rolling window, kept in one-second slots.

    Slots keep memory flat at thousands of calls per second; a method is blocked
    while its sum exceeds the limit, until enough old slots leave the window.
    """

    def __init__(self, limit_s: float, window_s: float = 600.0) -> None:
        self.limit_s = limit_s
        self.window_s = window_s
        self._slots: dict[str, deque[list[float]]] = {}
        self._sums: dict[str, float] = {}

    def _expire(self, method: str, now: float) -> deque[list[float]] | None:
        slots = self._slots.get(method)
        if slots is None:
            return None
        while slots and slots[0][0] + self.window_s <= now:
            _, cost = slots.popleft()
            self._sums[method] -= cost
        if not slots:
            self._sums[method] = 0.0
        return slots

    def add(self, method: str, now: float, cost: float) -> None:
        if cost <= 0:
            return
        slots = self._expire(method, now)
        if slots is None:
            slots = self._slots[method] = deque()
            self._sums[method] = 0.0
        second = float(math.floor(now))
        if slots and slots[-1][0] == second:
            slots[-1][1] += cost
        else:
            slots.append([second, cost])
        self._sums[method] += cost

    def operating(self, method: str, now: float) -> float:
        self._expire(method, now)
        return max(0.0, self._sums.get(method, 0.0))

    def reset_at(self, method: str, now: float) -> float:
        """When the method's accumulated time falls back to zero."""
        slots = self._expire(method, now)
        if slots:
            return slots[-1][0] + self.window_s
        return now + self.window_s

    def blocked_until(self, method: str, now: float) -> float | None:
        if self.limit_s <= 0:
            return None
        slots = self._expire(method, now)
        total = self._sums.get(method, 0.0)
        if not slots or total <= self.limit_s + _EPSILON:
            return None
        for second, cost in slots:
            total -= cost
            if total <= self.limit_s + _EPSILON:
                return second + self.window_s
        return slots[-1][0] + self.window_s

    def methods(self) -> list[str]:
        return sorted(self._sums)

    def reset(self) -> None:
        self._slots.clear()
        self._sums.clear()
