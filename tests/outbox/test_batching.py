"""Due Bitrix24 calls travel 50 to a request, and each command's outcome reaches its job."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from b24mw.history.repository import record_event
from b24mw.kit.db import Database
from b24mw.kit.request_context import set_request_id
from b24mw.kit.staging import flush
from b24mw.models.enums import TaskEventType
from b24mw.models.history import HistoryEntry, IntegrationLog
from b24mw.outbox import Outbox, dlq
from b24mw.outbox.hooks import register_result_hook
from b24mw.outbox.worker import Worker
from b24mw.settings import Settings
from tests.support.jobs import comments, job
from tests.support.outbound import EmulatorHandle, drain, jobs


async def test_120_jobs_take_three_requests(
    db: Database, outbound_settings: Settings, worker: Worker, emulator: EmulatorHandle
) -> None:
    tasks = [await emulator.create_task(title=f"T{i}") for i in range(120)]
    await comments(db, outbound_settings, *((t["id"], f"note {t['id']}") for t in tasks))
    assert await drain(worker) == 120
    batches = await emulator.calls("batch")
    assert [len(call["commands"]) for call in batches] == [50, 50, 20]
    assert await emulator.calls("task.commentitem.add") == []
    rows = await jobs(db)
    assert {row.status for row in rows} == {"done"}
    for task, row in zip(tasks, rows, strict=True):
        (comment,) = await emulator.comments(task["id"])
        assert row.result == comment["id"]
        assert comment["text"].startswith(f"note {task['id']}")


async def test_one_failing_command_does_not_fail_the_others(
    db: Database, outbound_settings: Settings, worker: Worker, emulator: EmulatorHandle
) -> None:
    good = [await emulator.create_task(title=f"G{i}") for i in range(2)]
    ids = await comments(
        db, outbound_settings, (good[0]["id"], "a"), (424242, "lost"), (good[1]["id"], "b")
    )
    await drain(worker)
    first, missing, last = [await job(db, i) for i in ids]
    assert (first.status, missing.status, last.status) == ("done", "dead", "done")
    assert missing.attempts == 1
    # Bitrix24 answers a comment on a task that does not exist as a refusal
    # for want of rights: the DLQ names both causes and keeps the portal's words.
    assert missing.last_error is not None
    assert missing.last_error.startswith("refused for lack of rights")
    assert "task was deleted" in missing.last_error
    assert "[ERROR_CORE: Insufficient permissions" in missing.last_error
    assert missing.error_history[0]["code"] == "ERROR_CORE"
    assert len(await emulator.calls("batch")) == 1


async def test_every_command_is_logged_under_its_own_request_id(
    db: Database, outbound_settings: Settings, worker: Worker, emulator: EmulatorHandle
) -> None:
    task_a, task_b = await emulator.create_task(), await emulator.create_task()
    set_request_id("req-a")
    await comments(db, outbound_settings, (task_a["id"], "from a"))
    set_request_id("req-b")
    await comments(db, outbound_settings, (task_b["id"], "from b"))
    await drain(worker)
    async with db.reader() as session:
        rows = (await session.execute(select(IntegrationLog).order_by(IntegrationLog.id))).all()
    logged = [(r.request_id, r.endpoint, r.status, r.resource_ref) for (r,) in rows]
    assert logged == [
        ("req-a", "task.commentitem.add", "ok", f"task:{task_a['id']}"),
        ("req-b", "task.commentitem.add", "ok", f"task:{task_b['id']}"),
    ]
    (batch,) = await emulator.calls("batch")
    assert batch["headers"]["x-request-id"].startswith("batch-")
    assert rows[0][0].response_json is not None
    assert rows[0][0].response_json["batch_request_id"] == batch["headers"]["x-request-id"]


async def _remember(session: AsyncSession, context: dict[str, Any], result: Any) -> None:
    record_event(
        session, type=TaskEventType.COMMENT, task_id_b24=context["task"], payload={"id": result}
    )
    if context.get("fail"):
        raise RuntimeError("hook broke")


register_result_hook("test.remember_comment", _remember)


async def _hooked(db: Database, settings: Settings, task_id: int, **context: Any) -> int:
    outbox = Outbox(settings)
    async with db.unit_of_work() as session:
        created = outbox.b24_call(
            session,
            "task.commentitem.add",
            {"TASKID": task_id, "FIELDS": {"POST_MESSAGE": "hooked"}},
            on_result="test.remember_comment",
            context={"task": task_id, **context},
        )
        await flush(session)
        return created.id


async def _events(db: Database) -> list[HistoryEntry]:
    async with db.reader() as session:
        return list((await session.execute(select(HistoryEntry))).scalars())


async def test_result_hook_commits_with_the_job(
    db: Database, outbound_settings: Settings, worker: Worker, emulator: EmulatorHandle
) -> None:
    task = await emulator.create_task()
    set_request_id("req-hook")
    job_id = await _hooked(db, outbound_settings, task["id"])
    await drain(worker)
    (event,) = await _events(db)
    (comment,) = await emulator.comments(task["id"])
    assert event.payload_json == {"id": comment["id"]}
    assert event.request_id == "req-hook"  # rows written by hooks carry the origin's id
    assert (await job(db, job_id)).status == "done"


async def test_failed_hook_rolls_back_its_writes_and_replay_runs_only_the_hook(
    db: Database, outbound_settings: Settings, worker: Worker, emulator: EmulatorHandle
) -> None:
    task = await emulator.create_task()
    job_id = await _hooked(db, outbound_settings, task["id"], fail=True)
    await drain(worker)
    dead = await job(db, job_id)
    assert dead.status == "dead"
    assert dead.last_error is not None and "hook broke" in dead.last_error
    assert await _events(db) == []  # the hook's row went with its savepoint
    (comment,) = await emulator.comments(task["id"])
    assert dead.result == comment["id"]  # the call's result is kept

    async with db.unit_of_work() as session:
        replayed = await dlq.replay(session, job_id, "tester")
        replayed.payload = {**replayed.payload, "context": {"task": task["id"]}}
    await drain(worker)
    assert (await job(db, job_id)).status == "done"
    assert len(await emulator.comments(task["id"])) == 1  # no second call
    assert len(await emulator.calls()) == 1
    assert len(await _events(db)) == 1
