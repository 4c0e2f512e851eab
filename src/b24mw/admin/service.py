"""Admin views that combine several domains; the DLQ itself lives in ``outbox.dlq``."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.admin.schemas import ThrottleState
from b24mw.bitrix24.client import rate_limit_key
from b24mw.bitrix24.limiter import LimiterConfig
from b24mw.bitrix24.throttle import SharedThrottle
from b24mw.kit.db import Database
from b24mw.settings import Settings


async def throttle_state(session: AsyncSession, db: Database, settings: Settings) -> ThrottleState:
    portal = rate_limit_key(settings)
    config = LimiterConfig.from_settings(settings)
    if portal is None:
        return ThrottleState(
            configured=False,
            configured_rps=config.rps,
            configured_rpm=config.rpm,
            burst=config.burst,
        )
    snapshot = await SharedThrottle(db, config, portal).snapshot(session)
    return ThrottleState(configured=True, **snapshot)
