"""Jobs with one ordering key run in creation order; job N+1 waits for N to finish."""

from __future__ import annotations

from b24mw.kit.db import Database
from b24mw.models.ops import OutboxJob
from b24mw.outbox.worker import Worker
from b24mw.settings import Settings
from tests.support.jobs import comments, job
from tests.support.outbound import EmulatorHandle, drain, jobs


async def test_same_task_comments_arrive_in_order_despite_a_failure(
    db: Database, outbound_settings: Settings, worker: Worker, emulator: EmulatorHandle
) -> None:
    task = await emulator.create_task()
    await emulator.fault("http_500", method="task.commentitem.add", count=1)
    await comments(db, outbound_settings, *((task["id"], f"step {i}") for i in range(4)))
    await drain(worker, settle=True)
    texts = [c["text"].split("\n")[0] for c in await emulator.comments(task["id"])]
    assert texts == ["step 0", "step 1", "step 2", "step 3"]
    # The failed first attempt came before any later job was sent.
    calls = await emulator.calls("task.commentitem.add")
    assert calls[0]["error"] == "INTERNAL_SERVER_ERROR"
    assert calls[1]["args"]["FIELDS"]["POST_MESSAGE"].startswith("step 0")


async def test_a_key_sends_one_job_per_round_while_other_keys_share_the_batch(
    db: Database, outbound_settings: Settings, worker: Worker, emulator: EmulatorHandle
) -> None:
    busy, quiet = await emulator.create_task(), await emulator.create_task()
    await comments(
        db,
        outbound_settings,
        (busy["id"], "b1"),
        (busy["id"], "b2"),
        (quiet["id"], "q1"),
        (busy["id"], "b3"),
    )
    assert await worker.run_once() == 2  # b1 and q1 only
    statuses = [row.status for row in await jobs(db)]
    assert statuses == ["done", "pending", "done", "pending"]
    await drain(worker)
    texts = [c["text"].split("\n")[0] for c in await emulator.comments(busy["id"])]
    assert texts == ["b1", "b2", "b3"]


async def test_a_dead_job_unblocks_its_key(
    db: Database, outbound_settings: Settings, worker: Worker, emulator: EmulatorHandle
) -> None:
    task = await emulator.create_task()
    first, second = await comments(db, outbound_settings, (task["id"], "x"), (task["id"], "y"))
    async with db.unit_of_work() as session:
        doomed = await session.get(OutboxJob, first)
        assert doomed is not None
        doomed.payload = {**doomed.payload, "params": {"TASKID": task["id"]}}  # no FIELDS
    await drain(worker)
    assert (await job(db, first)).status == "dead"
    assert (await job(db, second)).status == "done"
