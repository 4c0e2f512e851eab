"""``b24mw archive run`` killed with SIGKILL part-way (a real process, whatever
step it is at) loses and duplicates nothing; the lease it left expires and a
later run finishes."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from b24mw.kit.db import Database
from b24mw.models.base import utcnow
from b24mw.models.ops import JobLease
from b24mw.retention.restore import verify
from b24mw.retention.storage import LocalStorage
from tests.retention.helpers import (
    LEASE_S,
    archive_env,
    assert_each_row_once,
    manifests,
    old_day,
    retention_settings,
    run,
    seed_history,
    snapshot,
)


def _run_and_kill(env: dict[str, str], archive: Path, after_parts: int) -> int:
    """Start the command, SIGKILL it once ``after_parts`` parts are on disk; its exit code."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "b24mw", "archive", "run", "--table", "task_events"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list(archive.rglob("*.jsonl.gz"))) >= after_parts:
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        code = proc.wait(timeout=30)
    return code


async def test_sigkill_mid_run_then_rerun_loses_and_duplicates_nothing(
    db: Database, tmp_path: Path
) -> None:
    await seed_history(db, {old_day(140): 1200, old_day(130): 1200})
    before = await snapshot(db)
    archive = tmp_path / "archive"
    env = archive_env(db, archive, tmp_path)
    storage = LocalStorage(archive)

    killed_at: list[int] = []
    for after_parts in (3, 9):
        code = await asyncio.to_thread(_run_and_kill, env, archive, after_parts)
        killed_at.append(len(await manifests(db)))
        assert code == -signal.SIGKILL
        kept, _ = await assert_each_row_once(db, storage, before)
        assert kept > 0
        # The dead run's lease runs out after LEASE_S: move its end instead of waiting.
        async with db.unit_of_work() as session:
            await session.execute(
                update(JobLease).values(lease_until=utcnow() - timedelta(seconds=1))
            )

    assert 0 < killed_at[0] <= killed_at[1] < 24
    settings = retention_settings(db, tmp_path, archive_lease_s=LEASE_S)
    report = await run(settings, db, storage=storage, holder="after-kill", tables=["task_events"])
    assert report is not None
    assert await assert_each_row_once(db, storage, before) == (0, 2400)
    checked = await verify(db, storage, table_name="task_events", first_day=None, last_day=None)
    assert checked.ok and checked.rows == 2400 and checked.orphans == []
