"""A real ``b24mw worker`` killed while it closes deals: nothing lost, nothing twice.

Extends the outbox's kill test (tests/outbox/test_processes.py) to the CRM
jobs: timeline comments (looked up by marker before a re-send) and stage
changes (looked up by the deal's stage) of many deals in one slow batch.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from b24mw.crm import closing, sync
from b24mw.kit.db import Database
from b24mw.outbox.enqueue import Outbox
from b24mw.outbox.worker import Worker
from tests.support.outbound import drain, jobs, outbound_settings_for
from tests.support.processes import emulator_process, wait_for_call, worker_process

DEALS = 12


@pytest.fixture
async def portal() -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """The emulator as its own process (no bucket: we count what arrives)."""
    async with emulator_process() as started:
        yield started


async def test_worker_killed_mid_batch_closes_each_deal_once_with_one_comment_each(
    db: Database, portal: tuple[str, httpx.AsyncClient], tmp_path: Path
) -> None:
    base, control = portal
    settings = outbound_settings_for(
        db.url,
        b24_url=f"{base}/rest/1/emulator/",
        event_sinks=f"file://{tmp_path}/events.jsonl",
        crm_sync=False,
    )
    deal_ids = []
    for n in range(DEALS):
        made = await control.post("/_emulator/person/deals", json={"title": f"D{n}"})
        deal_ids.append(made.json()["id"])
    outbox = Outbox(settings)
    async with httpx.AsyncClient(base_url=base) as rest:
        async with db.unit_of_work() as session:
            for deal_id in deal_ids:
                read = await rest.post(
                    "/rest/1/emulator/crm.item.get", json={"entityTypeId": 2, "id": deal_id}
                )
                await sync.store_item(session, sync.DEAL, read.json()["result"]["item"])
                order = closing.OrderRef("delivery", deal_id, f"D-{deal_id}", None, None, deal_id)
                for source, target in (("DELIVERED", "CASH_RETURNED"), ("CASH_RETURNED", "DONE")):
                    await closing.follow(
                        session,
                        outbox,
                        order,
                        source=source,
                        target=target,
                        text=f"Заказ D-{deal_id}: {source} → {target}",
                        locale="ru",
                    )
    await control.post(
        "/_emulator/faults",
        json={"kind": "latency", "method": "batch", "latency_s": 0.5, "count": 1},
    )
    with worker_process(db, base, tmp_path / "worker.log", outbox_lease_s="1.5") as proc:
        await wait_for_call(control, "batch")
        os.kill(proc.pid, signal.SIGKILL)  # mid-batch: the portal is still working on it
    assert "in_flight" in {row.status for row in await jobs(db)}

    async with httpx.AsyncClient() as http:
        rescuer = Worker(settings, db, http=http, worker_id="rescuer")
        await drain(rescuer, settle=True, timeout=30)
    assert {row.status for row in await jobs(db)} == {"done"}
    for deal_id in deal_ids:
        deal = (await control.get(f"/_emulator/deals/{deal_id}")).json()
        assert deal["stage_id"] == "WON"
        assert [c["comment"].splitlines()[0] for c in deal["timeline"]] == [
            f"Заказ D-{deal_id}: DELIVERED → CASH_RETURNED",
            f"Заказ D-{deal_id}: CASH_RETURNED → DONE",
        ]
    calls = (await control.get("/_emulator/calls")).json()
    updates = [
        c
        for call in calls
        for c in (call["commands"] or [call])
        if c["method"] == "crm.item.update"
    ]
    # Sent once each: a re-send after the kill found the stage already set.
    assert len(updates) == DEALS
    events = (await asyncio.to_thread((tmp_path / "events.jsonl").read_text)).splitlines()
    assert sum('"integration.deal.closed"' in line for line in events) == DEALS
