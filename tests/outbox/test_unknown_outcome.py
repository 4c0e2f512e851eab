"""A comment whose answer was lost is looked up by its marker before it is sent again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from b24mw.kit.db import Database
from b24mw.models.base import utcnow
from b24mw.models.enums import OutboxStatus
from b24mw.models.ops import OutboxJob
from b24mw.outbox import dlq
from b24mw.outbox.worker import Worker
from b24mw.settings import Settings
from tests.support.jobs import comments, job
from tests.support.outbound import EmulatorHandle, drain, outbound_settings_for


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
    # The task has no chat (the classic card): its comments hold the marker.
    assert [c["method"] for c in await emulator.calls()] == [
        "task.commentitem.add",
        "tasks.task.get",
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


@pytest.fixture
async def patient_worker(
    db: Database, outbound_http: httpx.AsyncClient
) -> AsyncIterator[tuple[Worker, Settings]]:
    """A worker that waits 1 s for a write to be applied late (in production
    ``B24MW_OUTBOX_LATE_APPLY_S``, 90 s)."""
    settings = outbound_settings_for(db.url, outbox_late_apply_s=1.0)
    w = Worker(settings, db, http=outbound_http, worker_id="patient")
    yield w, settings
    await w.aclose()


async def test_comment_applied_after_its_answer_was_lost_is_not_posted_twice(
    db: Database, patient_worker: tuple[Worker, Settings], emulator: EmulatorHandle
) -> None:
    worker, settings = patient_worker
    task = await emulator.create_task()
    # The answer is lost at once; the portal writes the comment 0.4 s later.
    await emulator.fault(
        "http_500", method="task.commentitem.add", count=1, phase="after", apply_delay_s=0.4
    )
    (job_id,) = await comments(db, settings, (task["id"], "exactly once, however late"))
    await drain(worker, settle=True)
    await emulator.portal.join_late()

    (comment,) = await emulator.comments(task["id"])
    done = await job(db, job_id)
    assert done.status == "done" and done.result == comment["id"]
    # One send, then one lookup after the late write, never a second send.
    assert [c["method"] for c in await emulator.calls()] == [
        "task.commentitem.add",
        "tasks.task.get",
        "task.commentitem.getlist",
    ]


async def test_a_write_whose_worker_died_waits_out_a_late_apply(
    db: Database, patient_worker: tuple[Worker, Settings], emulator: EmulatorHandle
) -> None:
    worker, settings = patient_worker
    task = await emulator.create_task()
    (job_id,) = await comments(db, settings, (task["id"], "sent by a worker that died"))
    # A worker claimed it and vanished: its lease has just run out.
    async with db.unit_of_work() as session:
        held = await session.get(OutboxJob, job_id)
        assert held is not None
        held.status, held.leased_by, held.attempts = OutboxStatus.IN_FLIGHT, "dead-worker", 1
        held.lease_until = utcnow() - timedelta(seconds=0.1)
    await worker.run_once()
    waiting = await job(db, job_id)
    assert (waiting.status, waiting.outcome_unknown, waiting.attempts) == ("pending", True, 1)
    assert waiting.next_attempt_at >= held.lease_until + timedelta(seconds=0.9)
    assert await emulator.calls() == []  # nothing sent, nothing looked up yet

    await drain(worker, settle=True)
    # The lookup found nothing (the dead worker never sent it): no task chat on
    # this classic card, and not among the comments.  Sent once now.
    assert [c["method"] for c in await emulator.calls()] == [
        "tasks.task.get",
        "task.commentitem.getlist",
        "task.commentitem.add",
    ]
    assert len(await emulator.comments(task["id"])) == 1


async def test_dlq_replay_of_an_unknown_send_still_waits_then_looks_up(
    db: Database, outbound_http: httpx.AsyncClient, emulator: EmulatorHandle
) -> None:
    settings = outbound_settings_for(db.url, outbox_late_apply_s=0.3)
    worker = Worker(settings, db, http=outbound_http, worker_id="replayer")
    try:
        task = await emulator.create_task()
        # Every send is lost at the proxy (never ran); each lookup finds nothing.
        await emulator.fault("html_502", method="task.commentitem.add", count=5)
        (job_id,) = await comments(db, settings, (task["id"], "through the DLQ"))
        await drain(worker, settle=True)
        dead = await job(db, job_id)
        assert (dead.status, dead.outcome_unknown, dead.attempts) == ("dead", True, 5)
        assert dead.finished_at is not None

        async with db.unit_of_work() as session:
            await dlq.replay(session, job_id, "ops")
        replayed = await job(db, job_id)
        # The last send may still land: the replay waits for it like a retry.
        assert replayed.next_attempt_at >= dead.finished_at + timedelta(seconds=0.25)
        await drain(worker, settle=True)
        assert len(await emulator.comments(task["id"])) == 1
        methods = [c["method"] for c in await emulator.calls()]
        assert methods[-3:] == [
            "tasks.task.get",
            "task.commentitem.getlist",
            "task.commentitem.add",
        ]
    finally:
        await worker.aclose()


async def test_on_the_new_card_a_lost_comment_is_found_in_the_task_chat(
    db: Database, outbound_settings: Settings, worker: Worker, emulator: EmulatorHandle
) -> None:
    await emulator.configure(task_card="new")
    task = await emulator.create_task()
    await emulator.fault("http_500", method="task.commentitem.add", count=1, phase="after")
    (job_id,) = await comments(db, outbound_settings, (task["id"], "exactly once, in the chat"))
    await drain(worker, settle=True)

    (message,) = await emulator.comments(task["id"])
    assert message["new_card"] is True
    done = await job(db, job_id)
    assert done.status == "done" and done.result == message["id"]
    # The task names its chat, and the comment is found there.
    assert [c["method"] for c in await emulator.calls()] == [
        "task.commentitem.add",
        "tasks.task.get",
        "im.dialog.messages.get",
    ]
    assert "lookup" not in done.payload


async def test_on_the_new_card_without_the_im_scope_a_lost_comment_is_never_resent(
    db: Database, outbound_settings: Settings, worker: Worker, emulator: EmulatorHandle
) -> None:
    await emulator.configure(task_card="new", webhook_scope="task,user")
    task = await emulator.create_task()
    await emulator.fault("http_500", method="task.commentitem.add", count=1, phase="after")
    (job_id,) = await comments(db, outbound_settings, (task["id"], "posted, unverifiable"))
    await drain(worker, settle=True)

    dead = await job(db, job_id)
    assert dead.status == "dead"
    assert dead.error_history[-1]["code"] == "insufficient_scope"
    assert dead.last_error is not None
    assert dead.last_error.startswith(
        "checking for an earlier delivery failed: refused for lack of rights: "
        "the webhook (or application) lacks the 'im' scope"
    )
    assert "[insufficient_scope (HTTP 403)" in dead.last_error
    assert len(await emulator.comments(task["id"])) == 1  # not sent a second time

    # Granted, and replayed from the DLQ: the lookup finds it, still one comment.
    await emulator.configure(webhook_scope="task,user,im")
    async with db.unit_of_work() as session:
        await dlq.replay(session, job_id, "ops")
    await drain(worker, settle=True)
    assert (await job(db, job_id)).status == "done"
    assert len(await emulator.comments(task["id"])) == 1
