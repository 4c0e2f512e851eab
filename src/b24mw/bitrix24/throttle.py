"""The one Bitrix24 limiter shared by every process: a row in ``rate_limit_state``.

Each decision is a short transaction that locks the portal's row (PostgreSQL
``FOR UPDATE``; SQLite's writer lock), so API and worker processes on several
machines draw from one quota.  A worker *reserves* a slot, sleeps until it and
sends; outcomes (success, ``QUERY_LIMIT_EXCEEDED``, operating-time blocks) are
fed back in the transaction that finishes the jobs.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.bitrix24 import metrics
from b24mw.bitrix24.client import CommandResult, Reply
from b24mw.bitrix24.errors import Outcome
from b24mw.bitrix24.limiter import Limiter, LimiterConfig
from b24mw.bitrix24.repository import ThrottleRepository
from b24mw.kit.db import Database
from b24mw.models.ops import RateLimitState


def _ts(value: datetime | None) -> float:
    return value.timestamp() if value is not None else 0.0


def _dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _load(row: RateLimitState) -> Limiter:
    blocked: dict[str, float] = {}
    for method, until in (row.blocked_methods or {}).items():
        try:
            blocked[method] = datetime.fromisoformat(str(until)).timestamp()
        except ValueError:
            continue
    return Limiter(
        rate=row.rate_per_s,
        tokens=row.tokens,
        refilled_at=_ts(row.refilled_at),
        paused_until=_ts(row.paused_until),
        streak=row.success_streak,
        window=[float(t) for t in (row.window or [])],
        blocked=blocked,
        limited_at=_ts(row.limited_at) if row.limited_at else None,
        limited_total=row.limited_total or 0,
        resets={
            str(m): float(t)
            for m, t in (row.operating_resets or {}).items()
            if isinstance(t, int | float)
        },
    )


def _store(limiter: Limiter, row: RateLimitState) -> None:
    row.rate_per_s = limiter.rate
    row.tokens = limiter.tokens
    row.refilled_at = _dt(limiter.refilled_at)
    row.paused_until = _dt(limiter.paused_until) if limiter.paused_until else None
    row.success_streak = limiter.streak
    row.window = list(limiter.window)
    row.blocked_methods = {m: _dt(u).isoformat() for m, u in limiter.blocked.items()}
    row.limited_at = _dt(limiter.limited_at) if limiter.limited_at else None
    row.limited_total = limiter.limited_total
    row.operating_resets = dict(limiter.resets)


@dataclass(frozen=True, slots=True)
class Reservation:
    granted: bool
    at: float
    wait_s: float


@dataclass(slots=True)
class Feedback:
    """What one exchange taught the limiter; applied with the jobs' outcome."""

    successes: int = 0
    query_limited: bool = False
    overloaded: bool = False
    # method -> the reset a 429 named (None: it named none, as documented).
    blocks: dict[str, float | None] = field(default_factory=dict)
    operating: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.successes or self.query_limited or self.overloaded or self.blocks or self.operating
        )


class SharedThrottle:
    def __init__(self, db: Database, config: LimiterConfig, portal: str) -> None:
        self.db = db
        self.config = config
        self.portal = portal

    async def _locked(self, session: AsyncSession) -> tuple[ThrottleRepository, RateLimitState]:
        repo = ThrottleRepository(session)
        row = await repo.lock(self.portal, rate=self.config.rps, tokens=float(self.config.burst))
        return repo, row

    async def wait_hint(self) -> float:
        """Seconds until a slot could be had; read-only, so cheap to ask before claiming."""
        async with self.db.reader() as session:
            repo = ThrottleRepository(session)
            row = await repo.get(self.portal)
            now = await repo.now()
        if row is None:
            return 0.0
        return max(0.0, _load(row).earliest(self.config, now) - now)

    async def blocked_methods(self, session: AsyncSession) -> dict[str, float]:
        """Methods Bitrix24 (or our pre-emption) blocked, with the unix time they free up."""
        repo = ThrottleRepository(session)
        row = await repo.get(self.portal)
        if row is None:
            return {}
        return _load(row).blocked_at(await repo.now())

    async def reserve(self, max_wait: float) -> Reservation:
        """Take the next slot if it comes within ``max_wait`` seconds; else only say when."""
        async with self.db.unit_of_work() as session:
            repo, row = await self._locked(session)
            now = await repo.now()
            limiter = _load(row)
            at = limiter.earliest(self.config, now)
            wait = at - now
            if wait > max_wait:
                return Reservation(False, at, wait)
            limiter.grant(self.config, at)
            _store(limiter, row)
        metrics.THROTTLE_RATE.set(limiter.rate)
        return Reservation(True, at, max(0.0, wait))

    async def acquire(self, max_wait: float) -> Reservation:
        """Reserve and sleep until the slot (for direct calls)."""
        reservation = await self.reserve(max_wait)
        if reservation.granted and reservation.wait_s > 0:
            metrics.throttle_wait(reservation.wait_s)
            await asyncio.sleep(reservation.wait_s)
        return reservation

    async def apply(self, session: AsyncSession, feedback: Feedback) -> dict[str, float]:
        """Feed outcomes back, inside the caller's unit of work; the methods
        now blocked, with the unix time each is usable again."""
        if not feedback:
            return {}
        repo, row = await self._locked(session)
        now = await repo.now()
        limiter = _load(row)
        if feedback.successes:
            limiter.record_success(self.config, feedback.successes)
        if feedback.query_limited:
            limiter.record_query_limit(self.config, now)
            metrics.THROTTLE_LIMITED.inc()
        if feedback.overloaded:
            limiter.record_overload(self.config, now)
        # Successes first: a batch whose earlier command of a method succeeded
        # names the reset a later command's 429 waits for.
        for method, time_block in feedback.operating:
            limiter.observe_operating(self.config, method, time_block, now)
        for method, reset_at in feedback.blocks.items():
            limiter.block_after_limit(self.config, method, reset_at, now)
        limiter.prune(now)
        _store(limiter, row)
        metrics.THROTTLE_RATE.set(limiter.rate)
        return limiter.blocked_at(now)

    async def snapshot(self, session: AsyncSession) -> dict[str, Any]:
        """The state an operator needs (admin API, CLI)."""
        repo = ThrottleRepository(session)
        row = await repo.get(self.portal)
        now = await repo.now()
        limiter = _load(row) if row is not None else Limiter.fresh(self.config, now)
        earliest = limiter.earliest(self.config, now)
        return {
            "portal": self.portal,
            "rate_per_s": round(limiter.rate, 4),
            "configured_rps": self.config.rps,
            "configured_rpm": self.config.rpm,
            "burst": self.config.burst,
            "floor_per_s": self.config.floor,
            "tokens": round(limiter.tokens_at(self.config, now), 4),
            "next_slot_in_s": round(max(0.0, earliest - now), 3),
            "requests_last_1s": sum(1 for t in limiter.window if now - 1.0 < t <= now),
            "requests_last_60s": sum(1 for t in limiter.window if now - 60.0 < t <= now),
            "paused_until": _dt(limiter.paused_until) if limiter.paused_until > now else None,
            "limited_total": limiter.limited_total,
            "last_limited_at": _dt(limiter.limited_at) if limiter.limited_at else None,
            "blocked_methods": {m: _dt(u) for m, u in limiter.blocked_at(now).items()},
        }


def learn(
    feedback: Feedback,
    reply: Reply,
    commands: list[CommandResult] | None = None,
) -> None:
    """Add what one HTTP exchange (and its batch commands) says about the limits.

    A 429 blocks its method; until when is decided with the shared state
    (``Limiter.block_after_limit``), which remembers each method's last reset.
    """
    error = reply.error
    if error is None:
        feedback.successes += 1
        # A batch's own time block says nothing about any method's operating time.
        if reply.time and reply.method != "batch":
            feedback.operating.append((reply.method, reply.time))
    elif error.outcome is Outcome.THROTTLED:
        feedback.query_limited = True
    elif error.code == "OVERLOAD_LIMIT":
        feedback.overloaded = True
    elif error.outcome is Outcome.OPERATING_LIMITED and reply.method != "batch":
        feedback.blocks[reply.method] = error.reset_at
    if error is not None:
        return  # the whole request failed: its commands say nothing of their own
    for item in commands or ():
        if item.error is not None and item.error.outcome is Outcome.OPERATING_LIMITED:
            feedback.blocks[item.method] = item.error.reset_at
        elif item.error is None and item.time:
            feedback.operating.append((item.method, item.time))
