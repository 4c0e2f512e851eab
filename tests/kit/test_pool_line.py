"""The pool's extra connections (``db_max_overflow``) live while the load
needs them — requests in line for one, or more of them busy than
``db_pool_size`` — and close once it has stayed lower for a while
(``kit.db.PeakPool``): a connection closed while the load goes on is opened
again a moment later, a new PostgreSQL backend per request in the worst case."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, select

from b24mw.kit import db as db_module
from b24mw.kit.db import Database, PeakPool
from tests.support.config import make_settings

POOL_SIZE, OVERFLOW = 1, 4
CAPACITY = POOL_SIZE + OVERFLOW


@pytest.fixture
async def small(db: Database) -> AsyncIterator[Database]:
    if db.is_sqlite:
        pytest.skip("SQLite has no pool to line up for")
    small = Database(
        make_settings(db.url, db_pool_size=POOL_SIZE, db_max_overflow=OVERFLOW), pre_ping=False
    )
    yield small
    await small.dispose()


def pool_of(database: Database) -> PeakPool:
    pool = database.engine.sync_engine.pool
    assert isinstance(pool, PeakPool)
    return pool


def opened_and_closed(database: Database) -> dict[str, int]:
    counts = {"opened": 0, "closed": 0}

    def opened(*_: Any) -> None:
        counts["opened"] += 1

    def closed(*_: Any) -> None:
        counts["closed"] += 1

    event.listen(database.engine.sync_engine, "connect", opened)
    event.listen(pool_of(database), "close", closed)
    return counts


async def reader(database: Database, rounds: int, *, pause: int = 0) -> None:
    for _ in range(rounds):
        reads = await database.statement_reads()
        try:
            await reads.connection.execute(select(1))
            await asyncio.sleep(0)  # others finish and queue meanwhile
        finally:
            await reads.close()
        for _ in range(pause):
            await asyncio.sleep(0)  # a request's work outside the database


async def one_read(database: Database) -> None:
    await reader(database, 1)


async def test_a_long_line_reuses_the_connections_then_they_close(small: Database) -> None:
    counts = opened_and_closed(small)
    # Three times as many readers as connections, each reading again as soon
    # as it has its answer: the line is never empty until the very end.
    await asyncio.wait_for(asyncio.gather(*(reader(small, 10) for _ in range(3 * CAPACITY))), 30)
    # Never more connections than the settings allow, and none opened twice
    # over: the plain queue pool closed and reopened one in every few here.
    assert counts == {"opened": CAPACITY, "closed": 0}
    pool = pool_of(small)
    assert pool.checkedout() == 0
    assert pool.checkedin() == CAPACITY  # the peak was a moment ago
    # Once the load has stayed lower for the window, the next connection
    # handed back takes the extra ones with it: pool_size stays open.
    pool.window_s = 0.0
    await one_read(small)
    assert pool.checkedin() == POOL_SIZE
    assert counts == {"opened": CAPACITY, "closed": OVERFLOW}


async def test_a_load_between_pool_size_and_capacity_opens_no_connection_twice(
    small: Database,
) -> None:
    counts = opened_and_closed(small)
    # More readers than pool_size but no line: each is out of the database
    # part of the time, so the idle connections come and go; the plain pool
    # closed every one handed back past pool_size and opened it again.
    readers = CAPACITY - 1
    await asyncio.wait_for(
        asyncio.gather(*(reader(small, 20, pause=3) for _ in range(readers))), 30
    )
    assert counts["opened"] <= readers
    assert counts["closed"] == 0


async def test_after_the_window_the_extra_connections_close_as_they_come_back(
    small: Database,
) -> None:
    counts = opened_and_closed(small)
    pool_of(small).window_s = 0.0
    held = [await small.statement_reads() for _ in range(CAPACITY)]
    for reads in held:
        await reads.connection.execute(select(1))
    for reads in held:
        await reads.close()
    assert counts == {"opened": CAPACITY, "closed": OVERFLOW}
    assert pool_of(small).checkedin() == POOL_SIZE


async def test_a_recreated_pool_keeps_the_rule(small: Database) -> None:
    # An invalidated connection (a restarted server) makes the engine
    # recreate its pool; the line, the kept size and the window come along.
    pool_of(small).window_s = 0.0
    await small.engine.dispose()
    pool = pool_of(small)
    assert (pool.keep, pool.window_s) == (POOL_SIZE, 0.0)
    counts = opened_and_closed(small)
    await asyncio.wait_for(asyncio.gather(*(reader(small, 5) for _ in range(3 * CAPACITY))), 30)
    assert counts["opened"] == CAPACITY
    assert pool.checkedin() == POOL_SIZE


async def test_requests_that_leave_the_line_leave_nothing_open(
    small: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "GATE_TIMEOUT_S", 0.05)
    pool_of(small).window_s = 0.0
    held = [await small.statement_reads() for _ in range(CAPACITY)]
    for reads in held:
        await reads.connection.execute(select(1))
    # Two wait past the line's timeout and ask the pool directly; two are
    # cancelled (their clients went away) before their turn.  (Two of each:
    # one request counted in line forever would hide behind pool_size.)
    gave_up = [asyncio.create_task(small.statement_reads()) for _ in range(2)]
    cancelled = [asyncio.create_task(small.statement_reads()) for _ in range(2)]
    await asyncio.sleep(0.01)
    for task in cancelled:
        task.cancel()
    await asyncio.sleep(0.1)
    for reads in held:
        await reads.close()
    for task in gave_up:
        late = await asyncio.wait_for(task, 5)
        await late.connection.execute(select(1))
        await late.close()
    for task in cancelled:
        with pytest.raises(asyncio.CancelledError):
            await task
    # None is still counted in line: the extra connections closed.
    pool = pool_of(small)
    assert pool.checkedout() == 0
    assert pool.checkedin() == POOL_SIZE
