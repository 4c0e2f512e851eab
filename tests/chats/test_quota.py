"""The poller's share of the quota: one batch request a round at most, none
while order traffic waits, and 200 open sessions all kept current."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from b24mw.kit.db import Database
from b24mw.models.support import ChatMessage, ChatSession
from b24mw.outbox.enqueue import Outbox
from b24mw.support.poller import poll_sessions
from tests.chats.helpers import start, write
from tests.support.portal import Portal, open_portal

SESSIONS = 200


@pytest.fixture
async def portal(  # a long interval: only the test makes sessions due again
    db: Database, tmp_path: Path
) -> AsyncIterator[Portal]:
    p = await open_portal(db, tmp_path, support_poll_interval_s=3600.0, support_poll_round_s=0.0)
    try:
        yield p
    finally:
        await p.close()


def requests(portal: Portal) -> int:
    """Requests that reached the portal (a batch is one)."""
    return len(portal.portal.calls.since(0))


async def stored(db: Database) -> int:
    async with db.reader() as session:
        return int(
            (await session.execute(select(func.count()).select_from(ChatMessage))).scalar_one()
        )


async def all_due(db: Database) -> None:
    async with db.unit_of_work() as session:
        await session.execute(update(ChatSession).values(checked_at=None))


async def test_200_open_sessions_cost_one_request_a_round(portal: Portal) -> None:
    chats = [await start(portal, client_name=f"Client {i}") for i in range(SESSIONS)]
    await portal.portal.events.join()
    # The activity events (the inbox reads them, 16 to a batch), then each
    # session's first read.
    await portal.worker.drain(timeout=60)
    ctx = portal.worker.context
    async with portal.db.reader() as session:
        rows = (await session.execute(select(ChatSession))).scalars().all()
    assert len(rows) == SESSIONS and not any(r.read_due for r in rows)
    for chat in chats:
        await write(portal, chat["id"], "new message")
    await all_due(portal.db)
    before, rounds = requests(portal), 0
    while await poll_sessions(ctx):
        rounds += 1
        assert requests(portal) - before == rounds  # one batch per round, never more
    # 4 rounds of dialog checks find every session grown, 4 rounds read them.
    assert rounds == 2 * SESSIONS // 50
    assert await stored(portal.db) == SESSIONS


async def test_the_poller_waits_while_order_traffic_is_due(portal: Portal) -> None:
    chat = await start(portal)
    await write(portal, chat["id"], "hi")
    await portal.portal.events.join()
    await portal.worker.drain(timeout=30)  # settles the inbox and the first read
    await write(portal, chat["id"], "again")
    await all_due(portal.db)
    async with portal.db.unit_of_work() as session:
        Outbox(portal.hook.settings).b24_call(
            session, "tasks.task.get", {"taskId": 1}, ordering_key="task:1"
        )
    before = requests(portal)
    assert await poll_sessions(portal.worker.context) == 0
    assert requests(portal) == before


async def test_one_round_per_round_interval_across_workers(portal: Portal) -> None:
    chats = [await start(portal) for _ in range(3)]
    await portal.portal.events.join()
    await portal.worker.drain(timeout=30)
    for chat in chats:
        await write(portal, chat["id"], "more")
    await all_due(portal.db)
    ctx = portal.worker.context
    slow = replace(ctx, settings=ctx.settings.model_copy(update={"support_poll_round_s": 600.0}))
    before = requests(portal)
    assert await poll_sessions(slow) == 3  # checks
    # Another worker (or the next tick) within the round interval spends nothing.
    assert await poll_sessions(slow) == 0
    assert requests(portal) == before + 1
