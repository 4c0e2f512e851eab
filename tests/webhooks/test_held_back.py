"""Waiting for our own limiter costs an event nothing (docs/outbound.md "Throttle": time spent
waiting for the shared quota is not an attempt).

Before: an inbox row whose reads found no slot within 30 s (a minute's quota
used up) spent an attempt each round and ended ``failed`` within seconds,
its order then left to reconciliation.  Now the row is given back untouched,
due when the limiter has a slot, and becomes its order once there is one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from b24mw.kit.db import Database
from b24mw.models.base import utcnow
from b24mw.models.ops import RateLimitState
from b24mw.webhooks.processor import process_inbox
from tests.support.portal import Portal, open_portal

ORDER = "- SKU-1 | Чехол | 2 | 490,00\ncustomer: Иван Петров"


@pytest.fixture
async def portal(db: Database, tmp_path: Path) -> AsyncIterator[Portal]:
    # Retries at once: without the fix the row burns its attempts in a few rounds.
    p = await open_portal(db, tmp_path, webhook_inbox_max_attempts=3, outbox_retry_delays="0")
    try:
        yield p
    finally:
        await p.close()


async def test_an_event_waiting_for_a_slot_spends_no_attempt(portal: Portal, db: Database) -> None:
    first = await portal.create_task(ORDER)
    await portal.settle()
    # The shared quota has no slot for two minutes (as when the minute's
    # requests are spent, or after OVERLOAD_LIMIT).
    async with db.unit_of_work() as session:
        await session.execute(
            update(RateLimitState).values(paused_until=utcnow() + timedelta(minutes=2))
        )
    second = await portal.create_task(ORDER)
    await portal.portal.events.join()

    for _ in range(5):
        await process_inbox(portal.worker.context)
    row = (await portal.inbox())[-1]
    assert (row.status, row.attempts, row.errors) == ("pending", 0, [])
    # Looked at again later, not at once, and within seconds rather than at the
    # limiter's far-off slot: a pause may end early.
    assert utcnow() < row.next_attempt_at <= utcnow() + timedelta(seconds=5)

    # The pause ends: the row is read and answered.
    async with db.unit_of_work() as session:
        await session.execute(update(RateLimitState).values(paused_until=None))
        await session.execute(update(type(row)).values(next_attempt_at=row.received_at))
    await portal.settle()
    assert sorted(o["task_id_b24"] for o in await portal.orders()) == [first, second]
