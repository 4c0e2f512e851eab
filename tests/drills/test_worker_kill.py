"""Drill: a worker SIGKILLed in the middle of a batch.

Every kind of outbound effect is queued (comments, a delivery's task, a
rejected return's subtask, status methods, CloudEvents); the portal is slow
with the first batch and the worker dies while the portal works on it.  A
second worker takes the jobs over once their lease runs out, finds what the
dead one had already written (by its markers, or the task's status) and sends
the rest: nothing lost, nothing twice.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from b24mw.app import create_app
from b24mw.kit.db import Database
from tests.drills.ledger import account_for_everything, quiet, read_events
from tests.drills.scale import SCALE
from tests.drills.stack import HOOK_SECRET, REST_SECRET, control, settled, stack
from tests.drills.workload import Workload
from tests.support.config import make_settings
from tests.support.outbound import jobs


async def _first_batch(portal: httpx.AsyncClient) -> None:
    async def seen() -> bool:
        calls = (await portal.get("/_emulator/calls", params={"method": "batch"})).json()
        return bool(calls)

    await settled(seen, within_s=20, every_s=0.02, what="the first batch")


async def test_worker_killed_mid_batch_loses_and_doubles_nothing(
    db: Database, tmp_path: Path
) -> None:
    with stack(tmp_path, db.url, outbox_lease_s="1.5") as drill:
        drill.emulator("--rps", "0")
        settings = make_settings(
            db.url,
            b24_url=f"{drill.portal}/rest/1/{REST_SECRET}/",
            webhook_secrets=HOOK_SECRET,
            event_sinks=f"file://{drill.events_file}",
        )
        app = create_app(settings, database=db)
        async with (
            control(drill) as portal,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as api,
        ):
            work = Workload(api, portal)
            await work.courier()
            await work.mixed(rounds=3 * SCALE)
            # The first batch takes the portal half a second: the worker dies in it.
            fault = {"kind": "latency", "method": "batch", "latency_s": 0.5, "count": 1}
            (await portal.post("/_emulator/faults", json=fault)).raise_for_status()

            doomed = drill.worker("doomed")
            await _first_batch(portal)
            doomed.kill()
            await asyncio.sleep(0.6)  # the portal finishes the batch nobody waits for
            [batch] = (await portal.get("/_emulator/calls", params={"method": "batch"})).json()
            in_flight = [
                j for j in await jobs(db) if j.status == "in_flight" and j.kind == "b24.call"
            ]
            assert len(in_flight) == len(batch["commands"]) > 1  # the dead worker's batch

            drill.worker("rescuer")
            await settled(lambda: quiet(db), within_s=60 * SCALE, what="the rescuer to finish")
            ledger = await account_for_everything(
                db, portal, events=read_events(drill.events_file), events_at_least_once=True
            )
    assert (ledger.deliveries, ledger.returns, ledger.orders) == (3 * SCALE, 6 * SCALE, 3 * SCALE)
    assert ledger.jobs["done"] > 40 * SCALE
