"""PostgreSQL restarting under a running worker: it recovers by itself, nothing lost or doubled."""

from __future__ import annotations

import asyncio
import time

import pytest

from b24mw.kit.db import Database
from b24mw.outbox.worker import Worker
from b24mw.settings import Settings
from tests.outbox.helpers import comments
from tests.support.outbound import EmulatorHandle, jobs


async def _until_done(db: Database, count: int, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while True:
        try:
            rows = await jobs(db)
            if len(rows) == count and {row.status for row in rows} == {"done"}:
                return
        except Exception:  # the test's own connections die with the server too
            pass
        assert time.monotonic() < deadline, "jobs not delivered after the restart"
        await asyncio.sleep(0.05)


async def test_worker_survives_a_database_restart(
    backend: str,
    request: pytest.FixtureRequest,
    db: Database,
    outbound_settings: Settings,
    worker: Worker,
    emulator: EmulatorHandle,
) -> None:
    if backend != "postgresql":
        pytest.skip("the SQLite file cannot be restarted")
    pg_server = request.getfixturevalue("pg_server")
    tasks = [await emulator.create_task(title=f"T{i}") for i in range(20)]
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        await comments(db, outbound_settings, *((t["id"], "before") for t in tasks[:10]))
        await _until_done(db, 10, within_s=10)

        await asyncio.to_thread(pg_server.restart)
        await comments(db, outbound_settings, *((t["id"], "after") for t in tasks[10:]))
        await _until_done(db, 20, within_s=20)
        assert not running.done()  # the same worker, never restarted
    finally:
        stop.set()
        await running
    for task in tasks:
        assert len(await emulator.comments(task["id"])) == 1
