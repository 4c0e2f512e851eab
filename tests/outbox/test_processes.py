"""Real processes: ``b24mw worker`` killed, stopped, and two of them sharing one quota."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from b24mw.kit.db import Database
from b24mw.outbox.worker import Worker
from b24mw.settings import Settings
from tests.support.jobs import comments
from tests.support.outbound import drain, jobs, outbound_settings_for
from tests.support.processes import calls, emulator_process, wait_for_call, worker_process
from tests.support.timing import max_in_window


@pytest.fixture
async def portal() -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """The emulator as its own process (no bucket: we count what arrives)."""
    async with emulator_process() as started:
        yield started


async def _tasks(control: httpx.AsyncClient, count: int) -> list[int]:
    ids = []
    for i in range(count):
        response = await control.post(
            "/_emulator/person/tasks", json={"title": f"T{i}", "responsible_id": 1}
        )
        ids.append(response.json()["id"])
    return ids


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
        await wait_for_call(control, "batch")
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
        await wait_for_call(control, "batch")
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
    seq_before = max((c["seq"] for c in await calls(control)), default=0)
    with (
        worker_process(db, base, tmp_path / "a.log", worker_id="A", **quota),
        worker_process(db, base, tmp_path / "b.log", worker_id="B", **quota),
    ):
        # Two processes share the real rolling minute, so no clock can be injected:
        # wait until the minute's quota is used (~5 s), then watch long enough for
        # an 11th call to show (at 2 rps it would come within 0.5 s).
        deadline = time.monotonic() + 30
        while len(await _since(control, seq_before)) < 10:
            assert time.monotonic() < deadline, "the quota was never used up"
            await asyncio.sleep(0.1)
        await asyncio.sleep(2)
    times = sorted(c["t"] for c in await _since(control, seq_before))
    assert max_in_window(times, 1.0) <= 2
    assert max_in_window(times, 60.0) <= 10
    assert len(times) == 10  # and the quota was used, not wasted
    delivered = [row for row in await jobs(db) if row.status == "done"]
    assert {row.leased_by for row in delivered} == {"A", "B"}


async def _since(control: httpx.AsyncClient, seq: int) -> list[dict[str, Any]]:
    return [c for c in await calls(control) if c["seq"] > seq]
