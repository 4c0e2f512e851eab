"""SQL for the shared limiter row (``rate_limit_state``)."""

from __future__ import annotations

import time

from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.models.base import utcnow
from b24mw.models.ops import RateLimitState


class ThrottleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def _is_postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    async def now(self) -> float:
        """Unix time from the database on PostgreSQL, so workers on several machines
        share one clock for the limiter's windows; SQLite is single-node anyway."""
        if self._is_postgres:
            value = await self.session.scalar(text("SELECT extract(epoch FROM clock_timestamp())"))
            return float(value)
        return time.time()

    async def get(self, portal: str) -> RateLimitState | None:
        return await self.session.get(RateLimitState, portal)

    async def lock(self, portal: str, *, rate: float, tokens: float) -> RateLimitState:
        """The portal's row, created on first use and locked until the transaction ends."""
        stmt = (
            select(RateLimitState)
            .where(RateLimitState.portal == portal)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        if row is not None:
            return row
        values = {
            "portal": portal,
            "rate_per_s": rate,
            "tokens": tokens,
            "refilled_at": utcnow(),
            "success_streak": 0,
            "window": [],
            "blocked_methods": {},
            "limited_total": 0,
            "updated_at": utcnow(),
        }
        dialect = postgresql if self._is_postgres else sqlite
        insert = dialect.insert(RateLimitState).values(**values).on_conflict_do_nothing()
        await self.session.execute(insert)
        return (await self.session.execute(stmt)).scalar_one()
