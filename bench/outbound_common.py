"""Shared plumbing for the ``bench/outbound_*.py`` benchmarks.

Each benchmark runs the emulator as its own process on a free port (the
portal's leaky bucket on, as in production), a fresh SQLite database migrated
by Alembic, and an in-process ``Worker`` talking real HTTP to the emulator.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, update

from b24mw.kit.db import Database
from b24mw.kit.logging import configure_logging
from b24mw.migrations import upgrade
from b24mw.models.ops import OutboxJob
from b24mw.outbox.worker import Worker
from b24mw.settings import Settings

SECRET = "emulator"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def emulator_process(*, rps: float, burst: float) -> Iterator[str]:
    """``b24mw emulator`` on a free port; yields its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("B24MW_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "b24mw",
            "emulator",
            "--port",
            str(port),
            "--rps",
            str(rps),
            "--burst",
            str(burst),
            "--operating-limit-s",
            "0",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/_emulator/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the emulator did not start")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def bench_settings(database_url: str, base: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "b24_url": f"{base}/rest/1/{SECRET}/",
        "event_sinks": "file:///dev/null",
        "log_level": "ERROR",
        "log_json": True,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    with tempfile.TemporaryDirectory(prefix="b24mw-bench-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        db = Database(bench_settings(url, "http://unused"))
        await upgrade(db.engine)
        await db.dispose()
        yield url


async def create_tasks(control: httpx.AsyncClient, count: int) -> list[int]:
    async def one(i: int) -> int:
        response = await control.post(
            "/_emulator/person/tasks", json={"title": f"Bench {i}", "responsible_id": 1}
        )
        response.raise_for_status()
        return int(response.json()["id"])

    ids: list[int] = []
    for start in range(0, count, 50):
        ids.extend(await asyncio.gather(*(one(i) for i in range(start, min(count, start + 50)))))
    return ids


async def calls_since(control: httpx.AsyncClient, seq: int = 0) -> list[dict[str, Any]]:
    response = await control.get("/_emulator/calls", params={"since": seq})
    response.raise_for_status()
    calls: list[dict[str, Any]] = response.json()
    return calls


async def last_seq(control: httpx.AsyncClient) -> int:
    calls = await calls_since(control)
    return max((c["seq"] for c in calls), default=0)


def max_in_window(times: list[float], width: float) -> int:
    """The most requests that started within any sliding window of ``width`` seconds."""
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - width:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


async def status_counts(db: Database) -> dict[str, int]:
    async with db.reader() as session:
        rows = await session.execute(
            select(OutboxJob.status, func.count()).group_by(OutboxJob.status)
        )
        return {status: int(n) for status, n in rows.all()}


async def make_due(db: Database) -> None:
    """Every pending job due now (enqueued jobs become due together at the start)."""
    async with db.unit_of_work() as session:
        await session.execute(
            update(OutboxJob)
            .where(OutboxJob.status == "pending")
            .values(next_attempt_at=func.current_timestamp())
        )


@asynccontextmanager
async def running_worker(settings: Settings, db: Database) -> AsyncIterator[Worker]:
    configure_logging("ERROR", True)
    async with httpx.AsyncClient() as http:
        worker = Worker(settings, db, http=http, worker_id="bench")
        # Bench only the outbox: no schedulers of other domains.
        worker.schedulers = {k: v for k, v in worker.schedulers.items() if k == "outbox.metrics"}
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        try:
            yield worker
        finally:
            stop.set()
            await task
