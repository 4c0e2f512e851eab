"""``b24mw archive ...`` as an operator runs it (a real process)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from b24mw.kit.db import Database
from tests.retention.helpers import archive_env, old_day, seed_history, snapshot


async def _b24mw(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "b24mw", "archive", *args]
    return await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=120
    )


async def test_run_list_verify_restore_from_the_command_line(db: Database, tmp_path: Path) -> None:
    await seed_history(db, {old_day(120): 150, old_day(100): 20, old_day(10): 7})
    before = await snapshot(db)
    archive = tmp_path / "archive"
    env = archive_env(db, archive, tmp_path)

    dry = await _b24mw(env, "run", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert [(d["table"], d["rows"]) for d in plan["days"]] == [
        ("task_events", 150),
        ("task_events", 20),
        ("integration_log", 75),
        ("integration_log", 10),
    ]
    assert len(await snapshot(db)) == 177  # a dry run deletes nothing

    done = await _b24mw(env, "run", "--older-than", "90d", "--table", "task_events")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["tables"][0]["rows"] == 170 and report["tables"][0]["parts"] == 3
    assert "rows/s" in done.stderr  # the progress bar

    listed = json.loads((await _b24mw(env, "list", "--table", "task_events")).stdout)
    assert [(p["day"], p["part"], p["rows"]) for p in listed["parts"]] == [
        (old_day(120).isoformat(), 1, 100),
        (old_day(120).isoformat(), 2, 50),
        (old_day(100).isoformat(), 1, 20),
    ]
    assert listed["last_run"]["success_at"] is not None
    day = old_day(120).isoformat()
    checked = await _b24mw(env, "verify", "--from", day, "--to", day)
    assert checked.returncode == 0 and json.loads(checked.stdout)["parts_checked"] == 2

    restored = await _b24mw(env, "restore", "--table", "task_events", "--from", day, "--to", day)
    assert restored.returncode == 0, restored.stderr
    counts = json.loads(restored.stdout)
    assert (counts["restored"], counts["skipped_existing"]) == (150, 0)
    now = await snapshot(db)
    assert len(now) == 157 and all(before[k] == v for k, v in now.items())


async def test_verify_exits_1_on_a_damaged_part(db: Database, tmp_path: Path) -> None:
    await seed_history(db, {old_day(120): 10})
    archive = tmp_path / "archive"
    env = archive_env(db, archive, tmp_path)
    assert (await _b24mw(env, "run")).returncode == 0
    [part] = list(archive.rglob("task_events/**/*.jsonl.gz"))
    part.write_bytes(part.read_bytes()[:-9])

    checked = await _b24mw(env, "verify")

    assert checked.returncode == 1
    assert json.loads(checked.stdout)["failed"][0]["object"].endswith("part-1.jsonl.gz")


async def test_bad_arguments_exit_2_with_one_line(db: Database, tmp_path: Path) -> None:
    env = archive_env(db, tmp_path / "archive", tmp_path)
    cases = [
        (["run", "--older-than", "ninety"], "--older-than"),
        (["run", "--table", "orders"], "--table: must be one of task_events, integration_log"),
        (["restore", "--table", "task_events", "--from", "2026-13-01", "--to", "x"], "--from"),
        (["verify", "--to", "yesterday"], "--to"),
    ]
    for args, message in cases:
        result = await _b24mw(env, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr
    bad_url = {**env, "B24MW_ARCHIVE_URL": "ftp://archive"}
    result = await _b24mw(bad_url, "run")
    assert result.returncode == 2 and "B24MW_ARCHIVE_URL" in result.stderr
