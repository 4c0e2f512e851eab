"""The limiter row shared through the database by every process."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from sqlalchemy import update

from b24mw.bitrix24.limiter import LimiterConfig
from b24mw.bitrix24.throttle import Feedback, SharedThrottle
from b24mw.kit.db import Database
from b24mw.models.ops import RateLimitState
from tests.support.timing import max_in_window

CONFIG = LimiterConfig(rps=5, rpm=8, burst=2, margin_s=0.02, pause_s=0.5, floor=0.5)


async def test_concurrent_reservations_get_distinct_slots_within_quota(db: Database) -> None:
    # Two "processes": separate throttle objects over one row.
    first, second = (SharedThrottle(db, CONFIG, "portal.test") for _ in range(2))
    results = await asyncio.gather(*(t.reserve(max_wait=120) for t in [first, second] * 6))
    slots = sorted(r.at for r in results)
    assert all(r.granted for r in results)
    assert len(set(slots)) >= len(slots) - CONFIG.burst  # only a burst may share an instant
    assert max_in_window(slots, 1.0) <= CONFIG.per_second
    assert max_in_window(slots, 60.0) <= CONFIG.rpm


async def test_a_far_slot_is_not_taken(db: Database) -> None:
    throttle = SharedThrottle(db, CONFIG, "portal.test")
    for _ in range(CONFIG.rpm):
        assert (await throttle.reserve(max_wait=60)).granted
    refused = await throttle.reserve(max_wait=1.0)
    assert not refused.granted
    assert refused.wait_s > 30  # the rolling minute is full
    assert await throttle.wait_hint() > 30
    async with db.reader() as session:
        state = await throttle.snapshot(session)
    assert state["requests_last_60s"] <= CONFIG.rpm


async def test_query_limit_slows_every_process_at_once(db: Database) -> None:
    worker_a = SharedThrottle(db, CONFIG, "portal.test")
    worker_b = SharedThrottle(db, CONFIG, "portal.test")
    await worker_a.reserve(max_wait=1)
    async with db.unit_of_work() as session:
        await worker_a.apply(session, Feedback(query_limited=True))
    async with db.reader() as session:
        seen_by_b = await worker_b.snapshot(session)
    assert seen_by_b["rate_per_s"] == CONFIG.rps / 2
    assert seen_by_b["paused_until"] is not None
    assert seen_by_b["limited_total"] == 1
    assert await worker_b.wait_hint() > 0.3  # paused for everyone


async def test_blocked_method_is_shared_and_expires(db: Database) -> None:
    throttle = SharedThrottle(db, CONFIG, "portal.test")
    until = time.time() + 0.5
    async with db.unit_of_work() as session:
        await throttle.apply(session, Feedback(blocks={"tasks.task.add": until}))
    async with db.reader() as session:
        assert set(await throttle.blocked_methods(session)) == {"tasks.task.add"}
    # The block's end passes: move it into the past instead of waiting for it.
    ended = datetime.fromtimestamp(until - 60, UTC).isoformat()
    async with db.unit_of_work() as session:
        await session.execute(
            update(RateLimitState)
            .where(RateLimitState.portal == "portal.test")
            .values(blocked_methods={"tasks.task.add": ended})
        )
    async with db.reader() as session:
        assert await throttle.blocked_methods(session) == {}


async def test_portals_have_separate_limits(db: Database) -> None:
    one = SharedThrottle(db, CONFIG, "one.test")
    other = SharedThrottle(db, CONFIG, "other.test")
    for _ in range(CONFIG.rpm):
        await one.reserve(max_wait=60)
    assert (await other.reserve(max_wait=0.01)).granted
