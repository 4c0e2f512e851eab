"""A worker killed (SIGKILL) while the portal answers its session reads: the
next worker reads again and stores every message exactly once."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from b24mw.kit.db import Database
from b24mw.models.support import ChatMessage, ChatSession
from b24mw.outbox.worker import Worker
from b24mw.support import flows
from tests.support.outbound import drain, outbound_settings_for
from tests.support.processes import emulator_process, wait_for_call, worker_process

SESSIONS = 30
MESSAGES = 3


@pytest.fixture
async def portal() -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """The emulator as its own process (no bucket: we count what arrives)."""
    async with emulator_process() as started:
        yield started


async def _sessions(control: httpx.AsyncClient) -> list[dict[str, object]]:
    created = []
    for i in range(SESSIONS):
        response = await control.post(
            "/_emulator/person/openlines/sessions", json={"client_name": f"C{i}"}
        )
        session = response.json()
        for n in range(MESSAGES):
            await control.post(
                f"/_emulator/person/openlines/sessions/{session['id']}/messages",
                json={"from": "client", "text": f"message {n}"},
            )
        created.append(session)
    return created


async def test_worker_killed_mid_read_loses_and_duplicates_nothing(
    db: Database, portal: tuple[str, httpx.AsyncClient], tmp_path: Path
) -> None:
    base, control = portal
    chats = await _sessions(control)
    # What the inbox does with each session's activity event.
    async with db.unit_of_work() as session:
        for chat in chats:
            await flows.on_activity(
                session,
                flows.Activity(int(str(chat["activity_id"])), int(str(chat["id"])), None, False, 1),
            )
    await control.post(
        "/_emulator/faults",
        json={"kind": "latency", "method": "batch", "latency_s": 0.5, "count": 1},
    )
    with worker_process(db, base, tmp_path / "worker.log", support_poll_round_s="0") as proc:
        await wait_for_call(control, "batch")
        os.kill(proc.pid, signal.SIGKILL)  # the portal is still answering
    settings = outbound_settings_for(
        db.url, b24_url=f"{base}/rest/1/emulator/", support_poll_round_s=0.0
    )
    async with httpx.AsyncClient() as http:
        rescuer = Worker(settings, db, http=http, worker_id="rescuer")
        await drain(rescuer, settle=True, timeout=30)
    async with db.reader() as session:
        rows = (await session.execute(select(ChatSession))).scalars().all()
        count = (await session.execute(select(func.count()).select_from(ChatMessage))).scalar_one()
        distinct = (
            await session.execute(select(func.count(func.distinct(ChatMessage.b24_message_id))))
        ).scalar_one()
    assert len(rows) == SESSIONS
    assert not any(r.read_due for r in rows)
    assert count == distinct == SESSIONS * MESSAGES
