"""Reconciliation pages by a stable key, so a task changing mid-scan costs no
other task its turn, and it also recovers lost events on the tasks behind
open orders and deliveries, which carry no tag."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from b24mw.kit.db import Database
from b24mw.models.base import utcnow
from b24mw.webhooks import reconcile as reconciliation
from b24mw.webhooks.reconcile import LINKED_CURSOR, reconcile
from b24mw.webhooks.repository import WebhookRepository
from tests.support.auth import auth
from tests.support.clock import Clock
from tests.support.orders import delivery_body
from tests.support.portal import COURIER_USER, ORDER, Portal, open_portal


@pytest.fixture
async def portal(db: Database, tmp_path: Path) -> AsyncIterator[Portal]:
    p = await open_portal(db, tmp_path, clock=Clock())
    try:
        yield p
    finally:
        await p.close()


def _clock(portal: Portal) -> Clock:
    assert portal.clock is not None
    return portal.clock


async def _tagged_tasks(portal: Portal, count: int) -> list[int]:
    """Tagged tasks, one per second, whose events are all lost."""
    portal.portal.apply_settings({"events_enabled": False})
    ids = []
    for n in range(count):
        ids.append(await portal.create_task(ORDER.replace("SKU-1", f"SKU-{n}")))
        _clock(portal).advance(1)
    return ids


class ChangesMidScan:
    """The portal's list answers, with a person editing a task right after the
    first page went out (in CHANGED_DATE order it jumps to the end)."""

    def __init__(self, portal: Portal, task_id: int) -> None:
        self.portal = portal
        self.task_id = task_id
        self.calls: list[dict[str, Any]] = []
        gateway = portal.worker.context.b24
        assert gateway is not None
        self.call = gateway.call
        gateway.call = self  # type: ignore[method-assign]

    async def __call__(self, method: str, params: Any = None, **kwargs: Any) -> Any:
        reply = await self.call(method, params, **kwargs)
        if method == "tasks.task.list":
            self.calls.append(params)
            if len(self.calls) == 1:
                response = await self.portal.http.patch(
                    f"/_emulator/person/tasks/{self.task_id}", json={"title": "edited"}
                )
                assert response.status_code == 200
        return reply


async def test_a_task_changing_mid_scan_skips_no_other_task(portal: Portal) -> None:
    ids = await _tagged_tasks(portal, 120)
    spy = ChangesMidScan(portal, ids[0])
    assert await reconcile(portal.worker.context) == 120
    fed = sorted(r.task_id_b24 or 0 for r in await portal.inbox())
    assert fed == sorted(ids)
    # Pages by >ID over a fixed >CHANGED_DATE, counting nothing (start=-1).
    assert [c["filter"][">ID"] for c in spy.calls] == [0, ids[49], ids[99]]
    assert {c["start"] for c in spy.calls} == {-1}
    assert {c["order"]["ID"] for c in spy.calls} == {"asc"}
    assert len({c["filter"][">CHANGED_DATE"] for c in spy.calls}) == 1


async def test_a_scan_cut_short_goes_on_where_it_stopped(
    portal: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reconciliation, "MAX_PAGES", 1)
    ids = await _tagged_tasks(portal, 70)
    assert await reconcile(portal.worker.context) == 50
    async with portal.db.reader() as session:
        cursor = await WebhookRepository(session).cursor(reconciliation.CURSOR)
    assert cursor is not None and f'"after_id":{ids[49]}' in cursor
    assert await reconcile(portal.worker.context) == 20
    assert sorted(r.task_id_b24 or 0 for r in await portal.inbox()) == sorted(ids)
    assert await reconcile(portal.worker.context) == 0  # all fed, still waiting


async def test_a_cursor_from_before_keyset_paging_is_still_read(portal: Portal) -> None:
    ids = await _tagged_tasks(portal, 2)
    _clock(portal).advance(120)
    newer = await portal.create_task(ORDER.replace("SKU-1", "SKU-late"))
    async with portal.db.unit_of_work() as session:
        # The old cursor: the newest CHANGED_DATE alone, after the first two.
        stamp = (await portal.task(newer))["changed_date"]
        await WebhookRepository(session).set_cursor(reconciliation.CURSOR, stamp, utcnow())
    _clock(portal).advance(2)
    assert await reconcile(portal.worker.context) == 1
    assert [r.task_id_b24 for r in await portal.inbox()] == [newer]
    assert newer not in ids


async def test_a_lost_event_on_a_deliverys_task_is_recovered(portal: Portal) -> None:
    response = await portal.hook.client.post(
        "/api/v1/deliveries", headers=auth("1c", "erp"), json=delivery_body(courier_id="c-17")
    )
    assert response.status_code == 201, response.text
    delivery = response.json()
    await portal.settle()
    url = f"/api/v1/deliveries/{delivery['id']}"
    task_id = (await portal.hook.client.get(url, headers=auth("admin"))).json()["task_id_b24"]
    assert task_id is not None
    _clock(portal).advance(5)
    # Our task add was read inside its second: read once more, then settled.
    await reconcile(portal.worker.context)
    await portal.worker.drain(timeout=30)
    _clock(portal).advance(5)
    assert await reconcile(portal.worker.context) == 0

    portal.portal.apply_settings({"events_enabled": False})
    started = await portal.http.post(
        f"/_emulator/person/tasks/{task_id}/status",
        json={"action": "start", "actor_id": COURIER_USER},
    )
    assert started.status_code == 200
    _clock(portal).advance(5)
    assert await reconcile(portal.worker.context) == 1
    await portal.worker.drain(timeout=30)
    events = (await portal.hook.client.get(f"{url}/events", headers=auth("admin"))).json()
    statuses = [e["payload"].get("b24_status_name") for e in events["items"]]
    assert "in_progress" in statuses
    async with portal.db.reader() as session:
        assert await WebhookRepository(session).cursor(LINKED_CURSOR) is not None
    # Read after the change: the next run has nothing to feed.
    assert await reconcile(portal.worker.context) == 0
