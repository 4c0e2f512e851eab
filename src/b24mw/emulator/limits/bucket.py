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
    """Execution seconds per method in ten one-minute baskets (`limits.md`,
    "Resource Intensity Limits").

    A method's basket for a minute holds the time of its calls in that minute;
    its countdown starts at the first call in the minute and it leaves the sum
    ten minutes later (``window_s``).  ``operating`` is the sum of the baskets
    still counted; ``operating_reset_at`` when the oldest of them leaves.  The
    sum is checked before each call: a call that pushes it over the limit
    completes, the next one is blocked (429) until enough baskets have left.
    """

    BASKET_S = 60.0

    def __init__(self, limit_s: float, window_s: float = 600.0) -> None:
        self.limit_s = limit_s
        self.window_s = window_s
        # method -> baskets, oldest first: [minute, first call, seconds].
        self._baskets: dict[str, deque[list[float]]] = {}

    def _live(self, method: str, now: float) -> deque[list[float]] | None:
        baskets = self._baskets.get(method)
        if baskets is None:
            return None
        while baskets and baskets[0][1] + self.window_s <= now:
            baskets.popleft()
        return baskets

    def add(self, method: str, now: float, cost: float) -> None:
        if cost <= 0:
            return
        baskets = self._live(method, now)
        if baskets is None:
            baskets = self._baskets[method] = deque()
        minute = float(math.floor(now / self.BASKET_S))
        if baskets and baskets[-1][0] == minute:
            baskets[-1][2] += cost
        else:
            baskets.append([minute, now, cost])

    def operating(self, method: str, now: float) -> float:
        baskets = self._live(method, now)
        return sum(b[2] for b in baskets) if baskets else 0.0

    def reset_at(self, method: str, now: float) -> float:
        """When the oldest counted basket leaves the sum (``now`` + the window
        for a method with none)."""
        baskets = self._live(method, now)
        if baskets:
            return baskets[0][1] + self.window_s
        return now + self.window_s

    def blocked_until(self, method: str, now: float) -> float | None:
        if self.limit_s <= 0:
            return None
        baskets = self._live(method, now)
        if not baskets:
            return None
        total = sum(b[2] for b in baskets)
        if total <= self.limit_s + _EPSILON:
            return None
        for _, first, cost in baskets:
            total -= cost
            if total <= self.limit_s + _EPSILON:
                return first + self.window_s
        return baskets[-1][1] + self.window_s

    def methods(self) -> list[str]:
        return sorted(self._baskets)

    def reset(self) -> None:
        self._baskets.clear()
