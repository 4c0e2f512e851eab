"""``b24mw dlq list|show|replay|discard`` as an operator runs them."""

from __future__ import annotations

import asyncio
import json

from b24mw.kit.db import Database
from b24mw.models.base import utcnow
from tests.support.jobs import job, raw_job
from tests.support.processes import run_cli


async def test_dlq_commands(db: Database) -> None:
    history = [{"attempt": 1, "request_id": "req-cli", "code": "ERROR_CORE", "error": "bad"}]
    ids = [
        await raw_job(
            db,
            "b24.call",
            {"method": "task.commentitem.add", "params": {"TASKID": 1}},
            status="dead",
            attempts=1,
            last_error="ERROR_CORE: bad",
            error_history=history,
            finished_at=utcnow(),
        )
        for _ in range(3)
    ]

    async def cli(*args: str) -> tuple[int, str, str]:
        done = await asyncio.to_thread(run_cli, "dlq", *args, database_url=db.url)
        return done.returncode, done.stdout, done.stderr

    code, out, err = await cli("list")
    assert code == 0, err
    assert sorted(json.loads(line)["id"] for line in out.splitlines()) == ids
    assert "3 of 3 dead job(s)" in err

    code, out, _ = await cli("show", str(ids[0]))
    shown = json.loads(out)
    assert shown["error_history"][0]["request_id"] == "req-cli"
    assert shown["payload"]["method"] == "task.commentitem.add"

    code, out, _ = await cli("replay", str(ids[0]), "--actor", "alice")
    assert code == 0 and f"replayed 1 job(s): {ids[0]}" in out
    replayed = await job(db, ids[0])
    assert (replayed.status, replayed.error_history[-1]["by"]) == ("pending", "alice")

    code, out, _ = await cli("discard", str(ids[1]))
    assert code == 0 and (await job(db, ids[1])).discarded_by == "cli"

    code, _, err = await cli("replay", str(ids[0]))  # pending now: refused, named
    assert code == 2 and "not in the dead-letter queue" in err

    code, out, _ = await cli("replay", "--all")
    assert code == 0 and (await job(db, ids[2])).status == "pending"
