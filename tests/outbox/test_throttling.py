"""How the worker treats the limits: ours costs no attempt, Bitrix24's 503/429 do."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from b24mw.kit.db import Database
from b24mw.kit.staging import flush
from b24mw.models.ops import RateLimitState
from b24mw.outbox import Outbox
from b24mw.outbox.worker import Worker
from b24mw.settings import Settings
from tests.support.jobs import comments, job
from tests.support.outbound import EmulatorHandle, drain, outbound_settings_for


async def _limiter(db: Database) -> RateLimitState:
    async with db.reader() as session:
        return (await session.execute(select(RateLimitState))).scalar_one()


async def test_waiting_for_our_own_limiter_spends_no_attempt(
    db: Database, outbound_http: httpx.AsyncClient, emulator: EmulatorHandle
) -> None:
    settings = outbound_settings_for(db.url, b24_rpm=1, b24_batch_max=1)
    worker = Worker(settings, db, http=outbound_http, worker_id="slow")
    first, second = await emulator.create_task(), await emulator.create_task()
    ids = await comments(db, settings, (first["id"], "now"), (second["id"], "next minute"))
    for _ in range(3):
        await worker.run_once()
    sent, waiting = [await job(db, i) for i in ids]
    assert sent.status == "done"
    assert (waiting.status, waiting.attempts, waiting.error_history) == ("pending", 0, [])
    assert len(await emulator.calls()) == 1  # nothing else went on the wire


async def test_query_limit_spends_an_attempt_and_halves_the_shared_rate(
    db: Database, outbound_settings: Settings, worker: Worker, emulator: EmulatorHandle
) -> None:
    task = await emulator.create_task()
    await emulator.fault("query_limit", count=1)
    (job_id,) = await comments(db, outbound_settings, (task["id"], "after the 503"))
    await drain(worker, settle=True)
    done = await job(db, job_id)
    assert (done.status, done.attempts) == ("done", 2)
    assert done.error_history[0]["code"] == "QUERY_LIMIT_EXCEEDED"
    state = await _limiter(db)
    assert state.rate_per_s == outbound_settings.b24_rps / 2
    assert state.limited_total == 1


async def test_operation_time_limit_blocks_only_that_method(
    db: Database, outbound_settings: Settings, worker: Worker, emulator: EmulatorHandle
) -> None:
    t1, t2, t3 = [await emulator.create_task() for _ in range(3)]
    # The 429 names no reset time and no success of the method named one: it
    # is blocked for b24_operating_block_s (1 s here), one basket, past the
    # 0.8 s the portal keeps it blocked.
    await emulator.fault("operation_limit", method="task.commentitem.add", duration_s=0.8)
    outbox = Outbox(outbound_settings)
    (limited,) = await comments(db, outbound_settings, (t1["id"], "blocked"))
    async with db.unit_of_work() as session:
        update = outbox.b24_call(
            session, "tasks.task.update", {"taskId": t2["id"], "fields": {"TITLE": "renamed"}}
        )
        await flush(session)
        update_id = update.id

    await worker.drain()
    assert (await job(db, update_id)).status == "done"  # other methods carry on
    blocked = await job(db, limited)
    assert blocked.status == "pending" and blocked.attempts == 1
    assert "task.commentitem.add" in (await _limiter(db)).blocked_methods

    (later,) = await comments(db, outbound_settings, (t3["id"], "waits for the reset"))
    await worker.run_once()
    deferred = await job(db, later)
    assert (deferred.status, deferred.attempts) == ("pending", 0)
    assert deferred.next_attempt_at >= blocked.next_attempt_at.replace(microsecond=0)

    await drain(worker, settle=True, timeout=15)
    assert {(await job(db, i)).status for i in (limited, later)} == {"done"}
    # One 429 only: the later comment never went on the wire while the method was blocked.
    errors = [
        command["error"]
        for call in await emulator.calls()
        for command in (call["commands"] or [call])
    ]
    assert errors.count("OPERATION_TIME_LIMIT") == 1


async def test_a_429_waits_for_the_reset_of_the_methods_last_success(
    db: Database, outbound_settings: Settings, worker: Worker, emulator: EmulatorHandle
) -> None:
    """Bitrix24 keeps method time in one-minute baskets; a 429 does not say when
    it lifts, the last successful response's ``operating_reset_at`` does."""
    one, two = await emulator.create_task(), await emulator.create_task()
    await comments(db, outbound_settings, (one["id"], "fine"))
    await worker.drain()
    success = [c for c in await emulator.calls("task.commentitem.add") if c["status"] == 200]
    assert len(success) == 1
    named = (await _limiter(db)).operating_resets["task.commentitem.add"]
    # The first call's basket resets 600 s after it; the next call is refused.
    assert named >= success[0]["t"] + 599
    await emulator.fault("operation_limit", method="task.commentitem.add", count=1)
    (job_id,) = await comments(db, outbound_settings, (two["id"], "after the reset"))
    await worker.drain()
    waiting = await job(db, job_id)
    assert waiting.attempts == 1
    assert waiting.next_attempt_at.timestamp() == pytest.approx(named + 1, abs=0.01)
    blocked = (await _limiter(db)).blocked_methods
    assert set(blocked) == {"task.commentitem.add"}
