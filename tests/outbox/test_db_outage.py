"""PostgreSQL down under a running worker: it backs off and says so once per
change of state (issue 11), instead of a traceback every few milliseconds."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from b24mw.kit.db import Database
from b24mw.kit.logging import configure_logging
from b24mw.migrations import upgrade
from b24mw.outbox.worker import MAX_BACKOFF_S, Backoff, Worker
from tests.support.config import make_settings
from tests.support.postgres import PostgresServer


def _events(out: str) -> list[str]:
    return [json.loads(line)["event"] for line in out.splitlines() if line.strip()]


async def _run_until(
    capsys: pytest.CaptureFixture[str], seen: list[str], event: str, within_s: float
) -> None:
    deadline = time.monotonic() + within_s
    while event not in seen:
        assert time.monotonic() < deadline, f"no {event} within {within_s} s: {seen}"
        await asyncio.sleep(0.1)
        seen += _events(capsys.readouterr().out)


async def test_worker_backs_off_and_logs_each_outage_once(
    own_pg_server: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = own_pg_server.url("own")
    migrator = Database(make_settings(url))
    await upgrade(migrator.engine)
    await migrator.dispose()
    # Poll every 20 ms: without backoff that is fifty failures a second.
    settings = make_settings(url, outbox_poll_s=0.02, log_level="INFO")
    configure_logging("INFO", json_output=True)
    db = Database(settings)
    worker = Worker(settings, db, worker_id="outage-worker")
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.sleep(0.5)
        capsys.readouterr()
        await asyncio.to_thread(own_pg_server.finish_shutdown)
        seen: list[str] = []
        await _run_until(capsys, seen, "database_unavailable", within_s=10)
        await asyncio.sleep(3)
        out = capsys.readouterr()
        seen += _events(out.out)  # every line is JSON, or this fails
        assert seen.count("database_unavailable") == 1, seen
        assert "scheduler_failed" not in seen and "lane_round_failed" not in seen, seen
        assert "Traceback" not in out.out + out.err

        await asyncio.to_thread(own_pg_server.start_again)
        await _run_until(capsys, seen, "database_available", within_s=MAX_BACKOFF_S + 10)
        await asyncio.sleep(0.5)
        seen += _events(capsys.readouterr().out)
        assert seen.count("database_available") == 1, seen
        assert not running.done()
    finally:
        stop.set()
        await running
        await worker.aclose()
        await db.dispose()


def test_backoff_doubles_up_to_its_bound_and_resets() -> None:
    backoff = Backoff(0.1, max_s=1.0)
    assert [backoff.failed() for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    backoff.succeeded()
    assert backoff.failed() == 0.1
