"""Real processes: the emulator, ``b24mw serve`` receiving the installation, and
two ``b24mw worker`` processes that need a new token at the same moment."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import update

from b24mw.emulator.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from b24mw.kit.db import Database
from b24mw.models.b24app import AppInstallation
from b24mw.models.base import utcnow
from tests.support.auth import JWT_SECRET
from tests.support.jobs import comments
from tests.support.outbound import jobs, outbound_settings_for, text_of
from tests.support.processes import b24mw_env, b24mw_process


def oauth_env(db: Database, emulator: str, **extra: str) -> dict[str, str]:
    return {
        "database_url": db.url,
        "jwt_secret": JWT_SECRET,
        "log_level": "WARNING",
        "b24_auth": "oauth",
        "b24_portal_url": emulator,
        "b24_client_id": DEFAULT_CLIENT_ID,
        "b24_client_secret": DEFAULT_CLIENT_SECRET,
        "b24_oauth_server": f"{emulator}/oauth/token/",
        "webhook_auth": "token",
        **extra,
    }


@contextmanager
def worker(env: dict[str, str], log: Path, worker_id: str) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "b24mw", "worker", "--worker-id", worker_id],
            env=b24mw_env(**env),
            stdout=out,
            stderr=out,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _until(check: Any, within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


async def test_two_workers_refreshing_at_once_leave_one_valid_pair(
    db: Database, tmp_path: Path
) -> None:
    with b24mw_process("emulator", "--rps", "0", health="/_emulator/health") as (emulator, _):
        env = oauth_env(db, emulator)
        async with httpx.AsyncClient(base_url=emulator, timeout=30) as control:
            with b24mw_process("serve", health="/health", **env) as (api, _):
                sent = (
                    await control.post(
                        "/_emulator/oauth/install",
                        json={"handler_url": f"{api}/api/v1/webhooks/bitrix24/install"},
                    )
                ).json()
                assert sent["status"] == 200, sent
            task_ids = []
            for i in range(12):
                made = await control.post(
                    "/_emulator/person/tasks", json={"title": f"T{i}", "responsible_id": 5}
                )
                task_ids.append(made.json()["id"])
            settings = outbound_settings_for(db.url)
            await comments(db, settings, *((t, "one token for all") for t in task_ids))
            # b24mw's stored token is at its end: the first call of either worker refreshes.
            async with db.unit_of_work() as session:
                await session.execute(update(AppInstallation).values(expires_at=utcnow()))
            # A slow OAuth server: the second worker arrives while the first one refreshes.
            await control.post("/_emulator/oauth", json={"token_latency_s": 1.5})
            before = (await control.get("/_emulator/oauth")).json()

            quota = {"b24_batch_max": "1", "outbox_poll_s": "0.02"}
            with (
                worker(env | quota, tmp_path / "a.log", "A"),
                worker(env | quota, tmp_path / "b.log", "B"),
            ):

                async def delivered() -> bool:
                    rows = [j for j in await jobs(db) if j.kind == "b24.call"]
                    return all(j.status == "done" for j in rows)

                await _until(delivered, 60, "the comments were not all delivered")
            after = (await control.get("/_emulator/oauth")).json()
            tokens = [r for r in after["token_requests"] if r["grant_type"] == "refresh_token"]
            seen = len([r for r in before["token_requests"] if r["grant_type"] == "refresh_token"])
            # One refresh for both processes, nothing refused: no lock-out.
            assert [(r["status"], r["error"]) for r in tokens[seen:]] == [(200, None)]
            assert after["refused"] == 0
            rows = [j for j in await jobs(db) if j.kind == "b24.call"]
            assert {j.leased_by for j in rows} == {"A", "B"}
            assert all(j.attempts == 1 and not j.error_history for j in rows)
            for task_id in task_ids:
                task = (await control.get(f"/_emulator/tasks/{task_id}")).json()
                assert [text_of(c["text"]) for c in task["comments"]] == ["one token for all"]

            # The pair left in the database is the live one.
            async with db.reader() as reader:
                row = await reader.get(AppInstallation, sent["member_id"])
            assert row is not None and row.state == "active"
            await control.post("/_emulator/oauth", json={"token_latency_s": 0})
            check = await control.get(
                "/oauth/token/",
                params={
                    "grant_type": "refresh_token",
                    "client_id": DEFAULT_CLIENT_ID,
                    "client_secret": DEFAULT_CLIENT_SECRET,
                    "refresh_token": row.refresh_token,
                },
            )
            assert check.status_code == 200, check.text
    for name in ("a.log", "b.log"):
        assert "b24_token_refused" not in (tmp_path / name).read_text()
