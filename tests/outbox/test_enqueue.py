"""Jobs are written in the caller's transaction: a rollback leaves none."""

from __future__ import annotations

import pytest

from b24mw.kit.db import Database
from b24mw.kit.request_context import set_request_id
from b24mw.kit.staging import flush
from b24mw.outbox import Outbox
from b24mw.settings import Settings
from tests.support.outbound import jobs


async def test_rollback_leaves_no_job(db: Database, outbound_settings: Settings) -> None:
    outbox = Outbox(outbound_settings)
    with pytest.raises(RuntimeError):
        async with db.unit_of_work() as session:
            outbox.b24_comment(session, 5, "never sent")
            outbox.event(session, {"id": "1", "source": "urn:b24mw:t", "type": "t"})
            await flush(session)
            raise RuntimeError("the change failed")
    assert await jobs(db) == []


async def test_commit_keeps_jobs_with_their_request_id(
    db: Database, outbound_settings: Settings
) -> None:
    set_request_id("req-enqueue")
    outbox = Outbox(outbound_settings)
    async with db.unit_of_work() as session:
        outbox.b24_comment(session, 5, "sent later")
        outbox.onec(session, "returns", {"id": 1}, idempotency_key="ret-1")
    rows = await jobs(db)
    assert [(r.kind, r.status, r.attempts, r.request_id) for r in rows] == [
        ("b24.call", "pending", 0, "req-enqueue"),
        ("onec.push", "pending", 0, "req-enqueue"),
    ]
    assert rows[0].ordering_key == "task:5"
    assert rows[0].payload["marker"] in rows[0].payload["params"]["FIELDS"]["POST_MESSAGE"]
