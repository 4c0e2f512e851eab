"""Periodic work registered beside the outbox: when it runs, and that it cannot stop it."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client import REGISTRY

from b24mw.kit.db import Database
from b24mw.outbox.schedulers import WorkerContext, register_scheduler, unregister_scheduler
from b24mw.outbox.worker import Worker
from b24mw.settings import Settings
from tests.support.jobs import comments, raw_job
from tests.support.outbound import EmulatorHandle, drain


async def test_registered_schedulers_reach_new_workers_with_a_context(
    db: Database,
    outbound_settings: Settings,
    outbound_http: httpx.AsyncClient,
    emulator: EmulatorHandle,
) -> None:
    seen: list[WorkerContext] = []

    async def sweep(ctx: WorkerContext) -> int:
        seen.append(ctx)
        return 0

    register_scheduler("test.sweep", sweep, interval_s=60)
    try:
        worker = Worker(outbound_settings, db, http=outbound_http, worker_id="sched")
    finally:
        unregister_scheduler("test.sweep")
    assert "test.sweep" in worker.schedulers
    await worker.drain()
    assert seen and seen[0].worker_id == "sched" and seen[0].db is db
    assert seen[0].b24 is not None
    user = await seen[0].b24.call("user.current")  # reads go through the shared limiter
    assert user.ok


async def test_drain_repeats_drain_schedulers_until_idle_and_skips_sweeps(
    worker: Worker,
) -> None:
    backlog = [3]
    sweeps: list[int] = []

    async def inbox(ctx: WorkerContext) -> int:
        if backlog[0]:
            backlog[0] -= 1
            return 1
        return 0

    async def reconcile(ctx: WorkerContext) -> int:
        sweeps.append(1)
        return 0

    worker.add_scheduler("test.inbox", inbox, interval_s=1)
    worker.add_scheduler("test.reconcile", reconcile, interval_s=0.01, drain=False)
    await worker.drain()
    assert backlog == [0]
    assert sweeps == []  # interval-only schedulers belong to run()


async def test_run_calls_schedulers_on_their_interval(worker: Worker) -> None:
    runs: list[float] = []

    async def tick(ctx: WorkerContext) -> int:
        runs.append(asyncio.get_running_loop().time())
        return 0

    worker.add_scheduler("test.tick", tick, interval_s=0.05, drain=False)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    # Until it has run a few times (no fixed sleep: start-up may be slow on a
    # loaded machine), then: again and again, paced by its interval.
    for _ in range(400):
        if len(runs) >= 4:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await task
    assert len(runs) >= 4
    # Paced by its interval, not run back to back (a lower bound only: a slow
    # machine makes the runs sparser, never denser).
    assert (runs[-1] - runs[0]) / (len(runs) - 1) >= 0.025


async def test_a_failing_scheduler_does_not_stop_the_outbox(
    db: Database, outbound_settings: Settings, worker: Worker, emulator: EmulatorHandle
) -> None:
    async def broken(ctx: WorkerContext) -> int:
        raise RuntimeError("scheduler bug")

    worker.add_scheduler("test.broken", broken, interval_s=0.01)
    task = await emulator.create_task()
    await comments(db, outbound_settings, (task["id"], "still delivered"))
    assert await drain(worker) == 1
    assert len(await emulator.comments(task["id"])) == 1


async def test_metrics_count_calls_and_show_the_queue(
    db: Database, outbound_settings: Settings, worker: Worker, emulator: EmulatorHandle
) -> None:
    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    labels = {"system": "b24", "method": "task.commentitem.add", "outcome": "ok"}
    before = sample("b24mw_outbound_calls_total", **labels)
    task = await emulator.create_task()
    await comments(db, outbound_settings, (task["id"], "counted"))
    await raw_job(db, "b24.call", {"params": {}})  # poison: dead at once
    await drain(worker)
    assert sample("b24mw_outbound_calls_total", **labels) == before + 1

    await worker.schedulers["outbox.metrics"].fn(worker.context)
    assert sample("b24mw_outbox_dlq_size") == 1
    assert sample("b24mw_outbox_jobs", status="done") == 1
    assert sample("b24mw_throttle_rate_per_second") == outbound_settings.b24_rps
