"""Real processes: ``b24mw worker`` killed, stopped, and two of them sharing one quota."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from b24mw.kit.db import Database
from b24mw.outbox.worker import Worker
from b24mw.settings import Settings
from tests.outbox.helpers import comments
from tests.support.outbound import drain, jobs, outbound_settings_for
from tests.support.processes import b24mw_env, b24mw_process
from tests.support.timing import max_in_window


@pytest.fixture
async def portal() -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """The emulator as its own process (no bucket: we count what arrives)."""
    with b24mw_process("emulator", "--rps", "0", health="/_emulator/health") as (base, _):
        async with httpx.AsyncClient(base_url=base, timeout=10) as control:
            yield base, control


@contextmanager
def worker_process(
    db: Database, base: str, log: Path, *, worker_id: str = "proc", **settings: str
) -> Iterator[Any]:
    env = b24mw_env(
        database_url=db.url,
        b24_url=f"{base}/rest/1/emulator/",
        # A worker refuses to start with Bitrix24 half configured (README §8).
        webhook_secrets="proc-webhook-secret",
        event_sinks=f"file://{log.parent}/events.jsonl",
        outbox_retry_delays="0.05,0.05,0.05,0.05",
        outbox_late_apply_s="0.05",
        outbox_poll_s="0.02",
        log_level="WARNING",
        # These tests count and time the outbox's own requests: no CRM scans.
        **{"crm_sync": "false", **settings},
    )
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "b24mw", "worker", "--worker-id", worker_id],
            env=env,
            stdout=out,
            stderr=out,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


async def _tasks(control: httpx.AsyncClient, count: int) -> list[int]:
    ids = []
    for i in range(count):
        response = await control.post(
            "/_emulator/person/tasks", json={"title": f"T{i}", "responsible_id": 1}
        )
        ids.append(response.json()["id"])
    return ids


async def _calls(control: httpx.AsyncClient, method: str | None = None) -> list[dict[str, Any]]:
    params = {"method": method} if method else {}
    calls: list[dict[str, Any]] = (await control.get("/_emulator/calls", params=params)).json()
    return calls


async def _wait_for_call(control: httpx.AsyncClient, method: str, within_s: float = 20) -> None:
    deadline = time.monotonic() + within_s
    while not await _calls(control, method):
        assert time.monotonic() < deadline, f"no {method} call reached the portal"
        await asyncio.sleep(0.05)


async def _comment_counts(control: httpx.AsyncClient, task_ids: list[int]) -> list[int]:
    return [
        len((await control.get(f"/_emulator/tasks/{task_id}")).json()["comments"])
        for task_id in task_ids
    ]


async def _comments_behind_a_slow_batch(
    db: Database, base: str, control: httpx.AsyncClient, count: int, text: str, latency_s: float
) -> tuple[list[int], Settings]:
    """``count`` tasks with one queued comment each; the portal's next batch takes ``latency_s``."""
    task_ids = await _tasks(control, count)
    settings = outbound_settings_for(db.url, b24_url=f"{base}/rest/1/emulator/")
    await comments(db, settings, *((task_id, text) for task_id in task_ids))
    await control.post(
        "/_emulator/faults",
        json={"kind": "latency", "method": "batch", "latency_s": latency_s, "count": 1},
    )
    return task_ids, settings


async def test_worker_killed_mid_batch_loses_and_duplicates_nothing(
    db: Database, portal: tuple[str, httpx.AsyncClient], tmp_path: Path
) -> None:
    base, control = portal
    task_ids, settings = await _comments_behind_a_slow_batch(
        db, base, control, 20, "survives kill -9", latency_s=0.5
    )
    # The lease outlives any request (in production: 120 s against a 30 s timeout), so
    # the portal has finished the killed worker's batch before anyone looks again.
    with worker_process(db, base, tmp_path / "worker.log", outbox_lease_s="1.5") as proc:
        await _wait_for_call(control, "batch")
        os.kill(proc.pid, signal.SIGKILL)  # mid-batch: the portal is still working on it
    assert {row.status for row in await jobs(db)} == {"in_flight"}

    async with httpx.AsyncClient() as http:
        rescuer = Worker(settings, db, http=http, worker_id="rescuer")
        await drain(rescuer, settle=True, timeout=20)
    rows = await jobs(db)
    assert {row.status for row in rows} == {"done"}
    assert await _comment_counts(control, task_ids) == [1] * 20


async def test_sigterm_finishes_the_batch_in_hand(
    db: Database, portal: tuple[str, httpx.AsyncClient], tmp_path: Path
) -> None:
    base, control = portal
    task_ids, _ = await _comments_behind_a_slow_batch(
        db, base, control, 5, "finished on stop", latency_s=0.8
    )
    with worker_process(db, base, tmp_path / "worker.log") as proc:
        await _wait_for_call(control, "batch")
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 15) == 0
    assert {row.status for row in await jobs(db)} == {"done"}
    assert await _comment_counts(control, task_ids) == [1] * 5


async def test_two_worker_processes_stay_inside_one_quota(
    backend: str, db: Database, portal: tuple[str, httpx.AsyncClient], tmp_path: Path
) -> None:
    if backend != "postgresql":
        pytest.skip("several worker processes share one database only on PostgreSQL")
    base, control = portal
    task_ids = await _tasks(control, 40)
    settings = outbound_settings_for(db.url)
    await comments(db, settings, *((task_id, "quota") for task_id in task_ids))
    quota = {
        "b24_rps": "2",
        "b24_burst": "2",
        "b24_rpm": "10",
        "b24_batch_max": "1",  # one job per request, so the quota is what bites
        "b24_window_margin_s": "0.1",
    }
    seq_before = max((c["seq"] for c in await _calls(control)), default=0)
    with (
        worker_process(db, base, tmp_path / "a.log", worker_id="A", **quota),
        worker_process(db, base, tmp_path / "b.log", worker_id="B", **quota),
    ):
        await _wait_for_call(control, "task.commentitem.add")
        await asyncio.sleep(13)  # the rolling minute is used up after ~5 s
    calls = [c for c in await _calls(control) if c["seq"] > seq_before]
    times = sorted(c["t"] for c in calls)
    assert max_in_window(times, 1.0) <= 2
    assert max_in_window(times, 60.0) <= 10
    assert len(times) == 10  # and the quota was used, not wasted
    delivered = [row for row in await jobs(db) if row.status == "done"]
    assert {row.leased_by for row in delivered} == {"A", "B"}
