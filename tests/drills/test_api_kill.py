"""Drill: the API SIGKILLed after it committed a write and before it answered.

The client sees its connection drop and cannot know whether the write
happened.  It retries with the same ``Idempotency-Key`` (against another API
process, the first one being gone) and gets the original answer — the same
return, the same status change — replayed, never a second one; the worker
then sends each effect once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from b24mw.kit.db import Database
from b24mw.models.enums import OrderStatus as S
from b24mw.models.history import HistoryEntry
from b24mw.models.returns import Return
from tests.drills.ledger import account_for_everything, quiet, read_events
from tests.drills.stack import control, settled, stack
from tests.drills.workload import COURIER, Workload, return_body
from tests.support.auth import auth

DIE = {"X-Drill": "die-after-commit"}


async def _count(db: Database, model: Any, *where: Any) -> int:
    async with db.reader() as session:
        return int(
            (
                await session.execute(select(func.count()).select_from(model).where(*where))
            ).scalar_one()
        )


async def test_a_retry_after_the_api_died_between_commit_and_answer_gets_the_original(
    db: Database, tmp_path: Path
) -> None:
    with stack(tmp_path, db.url) as drill:
        drill.emulator("--rps", "0")
        dying = drill.api("dying-api", module="tests.drills.dying_api")
        async with (
            control(drill) as portal,
            httpx.AsyncClient(base_url=dying.url or "", timeout=10) as first,
        ):
            work = Workload(first, portal)
            await work.courier()
            order_id = await work.order_walked(await work.person_task(), to=S.READY)
            task_id = await work.person_task()

            # A courier's return: committed, then the API dies before answering.
            create = auth("courier", COURIER)
            body = return_body(task_id)
            with pytest.raises(httpx.TransportError):
                await first.post("/api/v1/returns", headers=create | DIE, json=body)
            assert dying.popen.wait(timeout=10) == -9
            assert await _count(db, Return) == 1  # it did happen; the client cannot know

            second_api = drill.api("api")
            async with httpx.AsyncClient(base_url=second_api.url or "", timeout=10) as second:
                replayed = await second.post("/api/v1/returns", headers=create, json=body)
                assert replayed.status_code == 201, replayed.text
                assert replayed.headers["idempotent-replayed"] == "true"
                [stored] = (await second.get("/api/v1/returns", headers=auth("admin", "a"))).json()[
                    "items"
                ]
                assert replayed.json() == stored
                assert replayed.headers["location"].endswith(stored["id"])

                # The courier picks the order up; the answer is lost the same way.
                second_dying = drill.api("dying-api-2", module="tests.drills.dying_api")
                move = auth("courier", COURIER)
                url = f"/api/v1/ww/orders/{order_id}/status"
                async with httpx.AsyncClient(base_url=second_dying.url or "", timeout=10) as third:
                    with pytest.raises(httpx.TransportError):
                        await third.post(url, headers=move | DIE, json={"status": "PICKED_UP"})
                assert second_dying.popen.wait(timeout=10) == -9
                again = await second.post(url, headers=move, json={"status": "PICKED_UP"})
                assert again.status_code == 200, again.text
                assert again.headers["idempotent-replayed"] == "true"
                assert again.json()["status"] == "PICKED_UP"
                # A new key is a new request: the move is not made twice.
                other = await second.post(
                    url, headers=auth("courier", COURIER), json={"status": "PICKED_UP"}
                )
                assert other.status_code == 422
            assert await _count(db, Return) == 1
            picked = (HistoryEntry.instant_order_id == order_id, HistoryEntry.status == "PICKED_UP")
            assert await _count(db, HistoryEntry, *picked) == 1

            drill.worker()
            await settled(lambda: quiet(db), within_s=30, what="the worker to deliver")
            await account_for_everything(db, portal, events=read_events(drill.events_file))
