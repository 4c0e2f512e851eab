"""Two decisions at the same moment: exactly one wins, the other gets 409."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from sqlalchemy import text

from b24mw.kit.db import Database
from tests.returns.helpers import URL, create_return, jobs, task_events
from tests.support.auth import auth
from tests.support.problems import assert_problem

pytestmark = pytest.mark.usefixtures("couriers")

WAITING_ON_LOCKS = text(
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


async def _wait_for_lock_waiters(db: Database, expected: int) -> None:
    deadline = time.monotonic() + 15
    async with db.engine.connect() as probe:
        while time.monotonic() < deadline:
            waiting = (await probe.execute(WAITING_ON_LOCKS)).scalar_one()
            await probe.rollback()
            if waiting >= expected:
                return
            await asyncio.sleep(0.02)
    raise AssertionError(f"never saw {expected} requests waiting on the row lock")


async def test_concurrent_accept_and_reject_cannot_both_win(
    client: httpx.AsyncClient, db: Database, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite serialises writers; true concurrency needs PostgreSQL")
    created = await create_return(client)
    url = f"{URL}/{created['id']}"
    before = len(await jobs(db))

    # Hold the row lock so both requests read the pending return (reads do not
    # block) and then queue on their UPDATE; release once both are waiting.
    async with db.engine.connect() as holder:
        await holder.execute(
            text("SELECT id FROM returns WHERE id = :id FOR UPDATE"), {"id": created["id"]}
        )
        accept = asyncio.create_task(
            client.patch(url, headers=auth("1c", "onec"), json={"status": "accepted"})
        )
        reject = asyncio.create_task(
            client.patch(url, headers=auth("admin", "boss"), json={"status": "rejected"})
        )
        await _wait_for_lock_waiters(db, 2)
        await holder.rollback()
    responses = await asyncio.gather(accept, reject)

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 409], [r.text for r in responses]
    winner = next(r for r in responses if r.status_code == 200).json()["status"]
    loser = next(r for r in responses if r.status_code == 409)
    assert_problem(loser, 409, "conflict.concurrent_update")

    final = await client.get(url, headers=auth("admin"))
    assert final.json()["status"] == winner
    history = await task_events(db, created["id"])
    assert [e.status for e in history] == ["pending", winner]
    new_jobs = (await jobs(db))[before:]
    published = [j for j in new_jobs if j.kind == "event.publish"]
    assert len(published) == 1
    assert published[0].payload["event"]["data"]["status"] == winner


async def test_sequential_second_decision_is_a_refused_transition(
    client: httpx.AsyncClient,
) -> None:
    created = await create_return(client)
    url = f"{URL}/{created['id']}"
    first = await client.patch(url, headers=auth("1c", "onec"), json={"status": "accepted"})
    second = await client.patch(url, headers=auth("admin"), json={"status": "rejected"})
    assert first.status_code == 200
    assert_problem(second, 422, "conflict.transition")
