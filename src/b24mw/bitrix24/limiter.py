"""The adaptive limiter's arithmetic, free of I/O (the state lives in ``rate_limit_state``).

A request may start at time ``t`` when all of these hold:

- the shared pause (after ``QUERY_LIMIT_EXCEEDED``) is over;
- a token bucket of the current adaptive ``rate`` and capacity ``burst`` has a token;
- fewer than ``max(burst, ceil(rps))`` requests started in the last ``1 s + margin``;
- fewer than ``rpm`` requests started in the last ``60 s + margin``.

The margin absorbs the jitter between taking a slot and the request reaching
Bitrix24, so the count *on the wire* stays inside the quota in every sliding
window.  Slots are handed out in time order (``reserve``), so several workers
asking at once get distinct future slots instead of racing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from b24mw.settings import Settings

MINUTE = 60.0


@dataclass(frozen=True, slots=True)
class LimiterConfig:
    rps: float = 2.0
    rpm: int = 120
    burst: int = 2
    floor: float = 0.2
    margin_s: float = 0.02
    pause_s: float = 1.0
    recover_after: int = 10
    recover_step: float = 0.1
    operating_limit_s: float = 480.0
    operating_soft: float = 0.9
    # A 429 on a method whose last success named no reset still ahead blocks it
    # this long: one of Bitrix24's one-minute baskets.
    operating_block_s: float = 60.0
    overload_pause_s: float = 600.0

    @property
    def per_second(self) -> int:
        return max(self.burst, math.ceil(self.rps))

    @classmethod
    def from_settings(cls, settings: Settings) -> LimiterConfig:
        return cls(
            rps=settings.b24_rps,
            rpm=settings.b24_rpm,
            burst=settings.b24_burst,
            floor=min(settings.b24_rate_floor, settings.b24_rps),
            margin_s=settings.b24_window_margin_s,
            pause_s=settings.b24_pause_s,
            recover_after=settings.b24_recover_after,
            recover_step=settings.b24_recover_step,
            operating_limit_s=settings.b24_operating_limit_s,
            operating_soft=settings.b24_operating_soft,
            operating_block_s=settings.b24_operating_block_s,
            overload_pause_s=settings.b24_overload_pause_s,
        )


@dataclass(slots=True)
class Limiter:
    """One portal's shared limiter; times are unix seconds."""

    rate: float
    tokens: float
    refilled_at: float
    paused_until: float = 0.0
    streak: int = 0
    window: list[float] = field(default_factory=list)
    blocked: dict[str, float] = field(default_factory=dict)
    limited_at: float | None = None
    limited_total: int = 0
    # method -> operating_reset_at of its last successful response.
    resets: dict[str, float] = field(default_factory=dict)

    @classmethod
    def fresh(cls, config: LimiterConfig, now: float) -> Limiter:
        return cls(rate=config.rps, tokens=float(config.burst), refilled_at=now)

    def _rate(self, config: LimiterConfig) -> float:
        # Another process may run with a lower configured quota than the stored rate.
        return max(config.floor, min(self.rate, config.rps))

    def tokens_at(self, config: LimiterConfig, t: float) -> float:
        if t <= self.refilled_at:
            return self.tokens
        gained = (t - self.refilled_at) * self._rate(config)
        return min(float(config.burst), self.tokens + gained)

    def earliest(self, config: LimiterConfig, now: float) -> float:
        """The first moment at or after ``now`` a request may start."""
        t = max(now, self.paused_until, self.refilled_at, self.window[-1] if self.window else now)
        if self.tokens_at(config, t) < 1.0:
            t = max(t, self.refilled_at + (1.0 - self.tokens) / self._rate(config))
        if len(self.window) >= config.per_second:
            t = max(t, self.window[-config.per_second] + 1.0 + config.margin_s)
        if len(self.window) >= config.rpm:
            t = max(t, self.window[-config.rpm] + MINUTE + config.margin_s)
        return t

    def grant(self, config: LimiterConfig, at: float) -> None:
        self.tokens = self.tokens_at(config, at) - 1.0
        self.refilled_at = at
        self.window.append(at)
        horizon = at - MINUTE - config.margin_s
        keep = next((i for i, t in enumerate(self.window) if t > horizon), len(self.window))
        del self.window[:keep]

    def record_success(self, config: LimiterConfig, count: int = 1) -> None:
        """Additive increase: one step back towards ``rps`` per run of successes."""
        self.streak += count
        while self.streak >= config.recover_after:
            self.streak -= config.recover_after
            self.rate = min(config.rps, self._rate(config) + config.recover_step)

    def record_query_limit(self, config: LimiterConfig, now: float) -> None:
        """Multiplicative decrease and a short pause for every process at once.

        Several requests in flight all come back 503 together: only the first of
        an episode halves the rate, or one burst would collapse it to the floor.
        """
        self.limited_total += 1
        self.streak = 0
        self.paused_until = max(self.paused_until, now + config.pause_s)
        if self.limited_at is None or now - self.limited_at >= config.pause_s:
            self.rate = max(config.floor, self._rate(config) / 2.0)
            self.limited_at = now
            if self.refilled_at <= now:
                self.tokens = min(self.tokens_at(config, now), 0.0)
                self.refilled_at = now

    def record_overload(self, config: LimiterConfig, now: float) -> None:
        """OVERLOAD_LIMIT is a manual block on the portal side: stop for a long while."""
        self.limited_total += 1
        self.limited_at = now
        self.streak = 0
        self.paused_until = max(self.paused_until, now + config.overload_pause_s)

    def block(self, method: str, until: float) -> None:
        self.blocked[method] = max(self.blocked.get(method, 0.0), until)

    def observe_operating(
        self, config: LimiterConfig, method: str, time_block: dict[str, object] | None, now: float
    ) -> None:
        """A successful response's ``time``: remember when the method's oldest
        basket resets, and stop the method near its operating-time limit
        instead of taking a 429."""
        if not time_block:
            return
        operating = time_block.get("operating")
        reset_at = time_block.get("operating_reset_at")
        if not isinstance(reset_at, int | float) or isinstance(reset_at, bool):
            return
        self.resets[method] = float(reset_at)
        if not isinstance(operating, int | float):
            return
        if operating >= config.operating_soft * config.operating_limit_s and reset_at > now:
            self.block(method, float(reset_at))

    def block_after_limit(
        self, config: LimiterConfig, method: str, reset_at: float | None, now: float
    ) -> None:
        """Bitrix24 answered ``method`` with 429 ``OPERATION_TIME_LIMIT``.  The
        answer names no reset (`limits.md`: "for the first retry, refer to
        ``operating_reset_at`` from the last successful response"), so: the
        reset the answer names if any, else the one the method's last success
        named while still ahead (the second it names waited out), else one
        basket from now — "if the error persists, wait for the next reset"."""
        if reset_at is None:
            known = self.resets.get(method)
            reset_at = known + 1.0 if known is not None and known > now else None
        self.block(method, reset_at if reset_at is not None else now + config.operating_block_s)

    def blocked_at(self, now: float) -> dict[str, float]:
        return {m: until for m, until in self.blocked.items() if until > now}

    def prune(self, now: float) -> None:
        self.blocked = self.blocked_at(now)
        # A reset long past says nothing any more (baskets live ten minutes).
        self.resets = {m: t for m, t in self.resets.items() if t > now - 600.0}
