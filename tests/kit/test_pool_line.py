"""The pool's extra connections (``db_max_overflow``) live while requests are
in line for one and close once the line is empty (``kit.db.PeakPool``): a
connection closed while others wait is opened again a moment later, a new
PostgreSQL backend per request in the worst case."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, select

from b24mw.kit import db as db_module
from b24mw.kit.db import Database, PeakPool
from tests.support.config import make_settings

POOL_SIZE, OVERFLOW = 2, 3


@pytest.fixture
async def small(db: Database) -> AsyncIterator[Database]:
    if db.is_sqlite:
        pytest.skip("SQLite has no pool to line up for")
    small = Database(
        make_settings(db.url, db_pool_size=POOL_SIZE, db_max_overflow=OVERFLOW), pre_ping=False
    )
    yield small
    await small.dispose()


def opened_and_closed(database: Database) -> dict[str, int]:
    counts = {"opened": 0, "closed": 0}

    def opened(*_: Any) -> None:
        counts["opened"] += 1

    def closed(*_: Any) -> None:
        counts["closed"] += 1

    event.listen(database.engine.sync_engine, "connect", opened)
    event.listen(database.engine.sync_engine.pool, "close", closed)
    return counts


async def reader(database: Database, rounds: int) -> None:
    for _ in range(rounds):
        reads = await database.statement_reads()
        try:
            await reads.connection.execute(select(1))
            await asyncio.sleep(0)  # others finish and queue meanwhile
        finally:
            await reads.close()


async def test_a_long_line_reuses_the_connections_and_leaves_pool_size_open(
    small: Database,
) -> None:
    counts = opened_and_closed(small)
    capacity = POOL_SIZE + OVERFLOW
    # Three times as many readers as connections, each reading again as soon
    # as it has its answer: the line is never empty until the very end.
    await asyncio.wait_for(asyncio.gather(*(reader(small, 10) for _ in range(3 * capacity))), 30)
    # Never more connections than the settings allow, and none opened twice
    # over: the plain queue pool closed and reopened one in every few here.
    assert counts["opened"] == capacity
    pool = small.engine.sync_engine.pool
    assert isinstance(pool, PeakPool)
    # Once nobody waits, the extra ones are gone: pool_size stays open.
    assert pool.checkedout() == 0
    assert pool.checkedin() == POOL_SIZE
    assert counts["closed"] == OVERFLOW


async def test_without_a_line_the_extra_connections_close_as_before(small: Database) -> None:
    counts = opened_and_closed(small)
    held = [await small.statement_reads() for _ in range(POOL_SIZE + OVERFLOW)]
    for reads in held:
        await reads.connection.execute(select(1))
    for reads in held:
        await reads.close()
    assert counts == {"opened": POOL_SIZE + OVERFLOW, "closed": OVERFLOW}
    assert small.engine.sync_engine.pool.checkedin() == POOL_SIZE  # type: ignore[attr-defined]


async def test_a_recreated_pool_keeps_the_rule(small: Database) -> None:
    # An invalidated connection (a restarted server) makes the engine
    # recreate its pool; the line and the kept size must come along.
    await small.engine.dispose()
    pool = small.engine.sync_engine.pool
    assert isinstance(pool, PeakPool)
    counts = opened_and_closed(small)
    await asyncio.wait_for(
        asyncio.gather(*(reader(small, 5) for _ in range(3 * (POOL_SIZE + OVERFLOW)))), 30
    )
    assert counts["opened"] == POOL_SIZE + OVERFLOW
    assert pool.checkedin() == POOL_SIZE


async def test_requests_that_leave_the_line_leave_nothing_open(
    small: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "GATE_TIMEOUT_S", 0.05)
    capacity = POOL_SIZE + OVERFLOW
    held = [await small.statement_reads() for _ in range(capacity)]
    for reads in held:
        await reads.connection.execute(select(1))
    # One waits past the line's timeout and asks the pool directly; another
    # is cancelled (its client went away) before its turn.
    gave_up = asyncio.create_task(small.statement_reads())
    cancelled = asyncio.create_task(small.statement_reads())
    await asyncio.sleep(0.01)
    cancelled.cancel()
    await asyncio.sleep(0.1)
    for reads in held:
        await reads.close()
    late = await asyncio.wait_for(gave_up, 5)
    await late.connection.execute(select(1))
    await late.close()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    # Neither is still counted in line: the extra connections closed.
    pool = small.engine.sync_engine.pool
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
    assert pool.checkedin() == POOL_SIZE  # type: ignore[attr-defined]
