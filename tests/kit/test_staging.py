"""StagedWrite rows (history, log, outbox) live and die with their unit of work."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from b24mw.history.repository import HistoryRepository, log_exchange, record_event
from b24mw.kit.db import Database
from b24mw.kit.staging import StagingError, flush, savepoint, stage
from b24mw.models.base import table_of, utcnow
from b24mw.models.enums import LogDirection, TaskEventType
from b24mw.models.history import HistoryEntry, IntegrationLog
from b24mw.models.ops import IdempotencyKey, OutboxJob
from b24mw.models.returns import Return


async def _events(db: Database) -> list[HistoryEntry]:
    async with db.reader() as session:
        return list(
            (await session.execute(select(HistoryEntry).order_by(HistoryEntry.id))).scalars()
        )


async def test_rows_are_written_at_commit_in_order_with_their_ids(db: Database) -> None:
    async with db.unit_of_work() as session:
        staged = [
            record_event(session, type=TaskEventType.COMMENT, task_id_b24=n) for n in (7, 8, 9)
        ]
        assert [row.id for row in staged] == [None, None, None]
    assert [row.id for row in staged] == [e.id for e in await _events(db)]
    assert [e.task_id_b24 for e in await _events(db)] == [7, 8, 9]
    assert staged[0].id < staged[1].id < staged[2].id


async def test_a_query_in_the_unit_of_work_sees_what_it_staged(db: Database) -> None:
    async with db.unit_of_work() as session:
        record_event(session, type=TaskEventType.COMMENT, task_id_b24=1, correlation_id="c-1")
        assert await HistoryRepository(session).correlation_exists("c-1")


async def test_staged_rows_follow_the_orm_rows_they_refer_to(db: Database) -> None:
    # task_events.return_id is a foreign key: the return must be written first.
    async with db.unit_of_work() as session:
        ret_id = uuid.uuid4()
        now = utcnow()
        session.add(
            Return(
                id=ret_id,
                source="widget",
                courier_id="c",
                status="pending",
                created_at=now,
                updated_at=now,
            )
        )
        record_event(session, type=TaskEventType.STATUS, return_id=ret_id, status="pending")
    assert [e.return_id for e in await _events(db)] == [ret_id]


async def test_rollback_drops_staged_rows(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.unit_of_work() as session:
            record_event(session, type=TaskEventType.COMMENT, task_id_b24=1)
            await flush(session)
            record_event(session, type=TaskEventType.COMMENT, task_id_b24=2)
            raise RuntimeError("the change failed")
    assert await _events(db) == []


async def test_a_rolled_back_savepoint_drops_only_its_own_rows(db: Database) -> None:
    async with db.unit_of_work() as session:
        record_event(session, type=TaskEventType.COMMENT, task_id_b24=1)
        with pytest.raises(RuntimeError):
            async with savepoint(session):
                record_event(session, type=TaskEventType.COMMENT, task_id_b24=2)
                log_exchange(
                    session, direction=LogDirection.IN, system="api", endpoint="x", status="ok"
                )
                raise RuntimeError("inner step failed")
        async with savepoint(session):
            record_event(session, type=TaskEventType.COMMENT, task_id_b24=3)
    assert [e.task_id_b24 for e in await _events(db)] == [1, 3]
    async with db.reader() as session:
        assert (await session.execute(select(IntegrationLog))).first() is None


async def test_a_bare_savepoint_over_staged_rows_is_refused(db: Database) -> None:
    # begin_nested() would leave earlier staged rows inside the savepoint,
    # where rolling it back would lose them.
    with pytest.raises(StagingError):
        async with db.unit_of_work() as session:
            record_event(session, type=TaskEventType.COMMENT, task_id_b24=1)
            async with session.begin_nested():
                pass
    assert await _events(db) == []


async def test_runs_of_several_tables_get_their_ids_and_defaults(db: Database) -> None:
    # On PostgreSQL several runs are one statement (a CTE per run): the ids
    # must still land on the right rows and the Python-side defaults apply.
    async with db.unit_of_work() as session:
        first = [record_event(session, type=TaskEventType.COMMENT, task_id_b24=n) for n in (1, 2)]
        logged = log_exchange(
            session, direction=LogDirection.IN, system="api", endpoint="x", status="ok"
        )
        last = record_event(session, type=TaskEventType.COMMENT, task_id_b24=3)
        job = stage(
            session,
            table_of(OutboxJob),
            {"kind": "b24.call", "payload": {"method": "user.current", "params": {}}},
        )
    events = {e.id: e.task_id_b24 for e in await _events(db)}
    assert {row.id: events[row.id] for row in [*first, last]} == {
        first[0].id: 1,
        first[1].id: 2,
        last.id: 3,
    }
    async with db.reader() as session:
        log = await session.get(IntegrationLog, logged.id)
        outbox = await session.get(OutboxJob, job.id)
    assert log is not None and log.endpoint == "x" and log.retry_count == 0
    assert outbox is not None
    assert (outbox.status, outbox.attempts, outbox.error_history, outbox.outcome_unknown) == (
        "pending",
        0,
        [],
        False,
    )
    assert outbox.payload == {"method": "user.current", "params": {}}


async def test_a_staged_row_may_refer_to_one_staged_before_it(db: Database) -> None:
    ret_id = uuid.uuid4()
    now = utcnow()
    async with db.unit_of_work() as session:
        stage(
            session,
            table_of(Return),
            {
                "id": ret_id,
                "source": "widget",
                "courier_id": "c",
                "status": "pending",
                "version": 1,
                "created_at": now,
                "updated_at": now,
            },
        )
        record_event(session, type=TaskEventType.STATUS, return_id=ret_id, status="pending")
    assert [e.return_id for e in await _events(db)] == [ret_id]


async def test_binary_values_survive_the_combined_statement(db: Database) -> None:
    async with db.unit_of_work() as session:
        record_event(session, type=TaskEventType.COMMENT, task_id_b24=1)
        now = utcnow()
        stage(
            session,
            table_of(IdempotencyKey),
            {
                "key": "k",
                "endpoint": "POST /x",
                "actor_id": "a",
                "fingerprint": "f",
                "state": "done",
                "created_at": now,
                "locked_at": now,
                "expires_at": now,
                "response_body": bytes(range(256)),
            },
        )
    async with db.reader() as session:
        row = (await session.execute(select(IdempotencyKey))).scalar_one()
    assert row.response_body == bytes(range(256))
