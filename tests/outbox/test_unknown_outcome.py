"""A comment whose answer was lost is looked up by its marker before it is sent again."""

from __future__ import annotations

from b24mw.kit.db import Database
from b24mw.outbox.worker import Worker
from b24mw.settings import Settings
from tests.outbox.helpers import comments, job
from tests.support.outbound import EmulatorHandle, drain


async def test_lost_answer_is_found_by_marker_and_not_posted_twice(
    db: Database, outbound_settings: Settings, worker: Worker, emulator: EmulatorHandle
) -> None:
    task = await emulator.create_task()
    # The portal writes the comment, then the answer is lost (500).
    await emulator.fault("http_500", method="task.commentitem.add", count=1, phase="after")
    (job_id,) = await comments(db, outbound_settings, (task["id"], "exactly once"))
    await drain(worker, settle=True)
    (comment,) = await emulator.comments(task["id"])
    done = await job(db, job_id)
    assert done.status == "done" and done.result == comment["id"]
    assert done.error_history[0]["code"] == "INTERNAL_SERVER_ERROR"
    assert [c["method"] for c in await emulator.calls()] == [
        "task.commentitem.add",
        "task.commentitem.getlist",
    ]


async def test_batch_cut_off_mid_way_delivers_each_comment_once(
    db: Database, outbound_settings: Settings, worker: Worker, emulator: EmulatorHandle
) -> None:
    tasks = [await emulator.create_task(title=f"T{i}") for i in range(3)]
    # The first comment command runs, then the proxy answers 502 for the whole batch.
    await emulator.fault("html_502", method="task.commentitem.add", count=1, phase="after")
    ids = await comments(db, outbound_settings, *((t["id"], "once") for t in tasks))
    await drain(worker, settle=True)
    for task in tasks:
        assert len(await emulator.comments(task["id"])) == 1
    assert {(await job(db, i)).status for i in ids} == {"done"}
    # Each of the three was looked up once (retries are jittered: maybe in two
    # batches, and a lone resend goes out as a plain call, not a batch).
    methods = []
    for call in await emulator.calls():
        if call["method"] == "batch":
            methods += [command["method"] for command in call["commands"]]
        else:
            methods.append(call["method"])
    assert methods.count("task.commentitem.getlist") == 3
    assert methods.count("task.commentitem.add") == 1 + 2  # ran before the cut, then resends


async def test_lookup_that_finds_nothing_sends_again_without_spending_an_attempt(
    db: Database, outbound_settings: Settings, worker: Worker, emulator: EmulatorHandle
) -> None:
    task = await emulator.create_task()
    # Lost before the portal ran it: the lookup finds no comment.
    await emulator.fault("html_502", method="task.commentitem.add", count=1)
    (job_id,) = await comments(db, outbound_settings, (task["id"], "retry me"))
    await drain(worker, settle=True)
    done = await job(db, job_id)
    assert done.status == "done" and done.attempts == 2
    assert len(await emulator.comments(task["id"])) == 1
