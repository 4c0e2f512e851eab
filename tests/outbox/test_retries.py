"""429, 5xx, HTML pages and hangs follow the schedule into the DLQ; replay delivers."""

from __future__ import annotations

import httpx
import pytest

from b24mw.kit.db import Database
from b24mw.kit.request_context import set_request_id
from b24mw.outbox import dlq
from b24mw.outbox.retry import RetryPolicy
from b24mw.outbox.worker import Worker
from tests.support.jobs import comments, job
from tests.support.outbound import EmulatorHandle, drain, outbound_settings_for


def test_schedule_is_10s_30s_2m_10m_with_jitter_then_dead() -> None:
    policy = RetryPolicy()
    for attempts, base in enumerate((10, 30, 120, 600), start=1):
        delays = [policy.delay_after(attempts) for _ in range(200)]
        assert all(d is not None and base * 0.9 <= d <= base * 1.1 for d in delays)
        assert len({round(d or 0, 6) for d in delays}) > 1  # jittered
    assert policy.delay_after(5) is None
    assert policy.max_attempts == 5


@pytest.mark.parametrize("kind", ["http_500", "html_502", "hang", "query_limit"])
async def test_retryable_failures_end_in_the_dlq_and_replay_delivers(
    db: Database, outbound_http: httpx.AsyncClient, emulator: EmulatorHandle, kind: str
) -> None:
    settings = outbound_settings_for(db.url, b24_timeout_s=0.15, b24_connect_timeout_s=0.05)
    worker = Worker(settings, db, http=outbound_http, worker_id="retry-worker")
    task = await emulator.create_task()
    await emulator.fault(kind, latency_s=1.0)
    set_request_id("req-retry")
    (job_id,) = await comments(db, settings, (task["id"], "eventually"))

    await drain(worker, settle=True)
    dead = await job(db, job_id)
    assert dead.status == "dead" and dead.attempts == 5
    assert len(dead.error_history) == 5
    assert all(entry["request_id"] == "req-retry" for entry in dead.error_history)
    assert [e["outcome"] for e in dead.error_history] == ["retry"] * 4 + ["dead"]
    assert "gave up after 5 attempts" in (dead.last_error or "")
    assert await emulator.comments(task["id"]) == []

    await emulator.clear_faults()
    async with db.unit_of_work() as session:
        await dlq.replay(session, job_id, "ops")
    await drain(worker, settle=True)
    delivered = await job(db, job_id)
    assert delivered.status == "done"
    assert delivered.error_history[5]["event"] == "replayed"  # history kept
    assert len(await emulator.comments(task["id"])) == 1


async def test_permanent_error_is_dead_at_once_with_the_bitrix24_error(
    db: Database, worker: Worker, outbound_http: httpx.AsyncClient, emulator: EmulatorHandle
) -> None:
    (job_id,) = await comments(db, worker.settings, (987654, "to nowhere"))
    await drain(worker)
    dead = await job(db, job_id)
    assert dead.status == "dead" and dead.attempts == 1
    assert dead.error_history[0]["code"] == "ERROR_CORE"
    assert dead.error_history[0]["http_status"] == 400
    assert "Insufficient permissions" in (dead.last_error or "")


async def test_a_codeless_refusal_in_a_batch_is_dead_at_once_not_retried_to_the_end(
    db: Database, worker: Worker, emulator: EmulatorHandle
) -> None:
    one, two = await emulator.create_task(), await emulator.create_task()
    await emulator.fault("no_code", method="task.commentitem.add", count=1)
    job_ids = await comments(db, worker.settings, (one["id"], "one"), (two["id"], "two"))
    await drain(worker, settle=True)
    (batch,) = await emulator.calls("batch")  # both commands went in one request
    assert len(batch["commands"]) == 2
    first, second = [await job(db, job_id) for job_id in job_ids]
    assert (first.status, first.attempts) == ("dead", 1)
    assert first.error_history[-1]["code"] == "ERROR_WITHOUT_CODE"
    assert first.last_error == "ERROR_WITHOUT_CODE: Not found"
    assert second.status == "done"
