"""b24mw working as an installed local application: the flows end to end, tokens
that expire mid-run, refreshes that are refused, and events that carry the
application's token."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import update

from b24mw.b24app.session import AppSession
from b24mw.kit.db import Database
from b24mw.models.b24app import AppInstallation
from b24mw.models.base import utcnow
from tests.support.auth import auth
from tests.support.clock import Clock
from tests.support.jobs import comments
from tests.support.local_app import COURIER_USER, LocalApp, open_local_app
from tests.support.orders import DELIVERIES, add_couriers, create_delivery
from tests.support.outbound import jobs, text_of
from tests.support.portal import add_courier

ORDER_TEXT = "- SKU-1 | Phone case | 2 | 490,00\ncustomer: Ivan Petrov"


def rest_calls(app: LocalApp, method: str | None = None) -> list[dict[str, Any]]:
    return app.portal.calls.since(0, method)


async def test_installed_through_the_portal_b24mw_works_end_to_end(local_app: LocalApp) -> None:
    await add_courier(local_app.db, "c-17", COURIER_USER, "Пётр Курьеров")
    await add_couriers(local_app.db)
    await local_app.install()
    await local_app.settle()

    # A person tags a task: the application's handler hears of it and an order is made.
    task_id = await local_app.person_task(ORDER_TEXT)
    await local_app.settle()
    [order] = await local_app.orders()
    assert order["task_id_b24"] == task_id and order["total_amount"] == "980.00"
    replies = [text_of(c["text"]) for c in (await local_app.task(task_id))["comments"]]
    assert any(str(order["id"]) in text for text in replies)
    token = (await local_app.oauth())["application_token"]
    events = [e for e in local_app.portal.events.log if e["url"] and e["delivered"]]
    assert events and all(e["form"]["auth[application_token]"] == token for e in events)
    assert all("auth[access_token]" in e["form"] for e in events)
    # No access token of an event is ever stored.
    inbox_rows = await local_app.db_inbox_payloads()
    assert inbox_rows and all("access_token" not in p.get("auth", {}) for p in inbox_rows)

    # A 1C delivery becomes its courier's task.
    delivery = await create_delivery(local_app.client)
    await local_app.settle()
    stored = (
        await local_app.client.get(f"{DELIVERIES}/{delivery['id']}", headers=auth("1c"))
    ).json()
    task = await local_app.task(stored["task_id_b24"])
    assert task["title"] == "Доставка ЗК-000123: Oleg Ivanov"
    assert task["created_by"] == 1  # the user the application acts as
    assert {j.status for j in await jobs(local_app.db)} == {"done"}
    # Every call was an OAuth call that the portal accepted.
    assert all(c["status"] == 200 for c in rest_calls(local_app))


async def test_tokens_expiring_mid_run_are_renewed_without_a_failed_attempt(
    local_app: LocalApp,
) -> None:
    await local_app.install()
    await local_app.settle()
    tasks = [(await local_app.person_task("x", tags=[])) for _ in range(3)]
    await local_app.settle()
    refreshes = (await local_app.oauth())["refreshes"]

    # The portal expires every token behind b24mw's back (clock skew, a long pause).
    (await local_app.control.post("/_emulator/oauth/expire")).raise_for_status()
    await comments(local_app.db, local_app.settings, *((t, "after expiry") for t in tasks))
    await local_app.worker.drain(timeout=10)

    rows = [j for j in await jobs(local_app.db) if j.kind == "b24.call"]
    assert {(j.status, j.attempts) for j in rows[-3:]} == {("done", 1)}
    assert all(not j.error_history for j in rows)
    assert (await local_app.oauth())["refreshes"] == refreshes + 1
    # Refused once as expired, then repeated at once with the new token.
    calls = rest_calls(local_app)
    [refused] = [c for c in calls if c["status"] == 401]
    assert refused["error"] == "expired_token"
    repeated = next(c for c in calls if c["seq"] > refused["seq"])
    assert (repeated["method"], repeated["status"]) == (refused["method"], 200)
    for task_id in tasks:
        assert [text_of(c["text"]) for c in (await local_app.task(task_id))["comments"]] == [
            "after expiry"
        ]


async def test_a_token_near_its_end_is_refreshed_before_the_call(
    db: Database, tmp_path: Path
) -> None:
    # 2 s tokens, refreshed 1.5 s early: each is due for renewal half a second after issue.
    app = await open_local_app(
        db, tmp_path, emulator={"access_token_lifetime_s": 2.0}, b24_token_margin_s=1.5
    )
    try:
        await app.install()
        # The worker's token cache runs on a clock the test moves: 0.6 s later the
        # token issued at install is inside its margin.
        clock = Clock()
        session = app.worker_session()
        session.clock = session.server.clock = clock
        clock.advance(0.6)
        task_id = await app.person_task("x", tags=[])
        await comments(app.db, app.settings, (task_id, "fresh token"))
        await app.worker.drain(timeout=10)
        state = await app.oauth()
        assert state["refreshes"] >= 2  # the install's check, then before the calls
        assert all(c["status"] == 200 for c in rest_calls(app))  # never met expired_token
        assert [j.attempts for j in await jobs(app.db) if j.kind == "b24.call"] == [1]
    finally:
        await app.close()


async def test_two_processes_needing_a_new_token_refresh_it_once(local_app: LocalApp) -> None:
    await local_app.install()
    row = await local_app.installation()
    assert row is not None
    async with local_app.db.unit_of_work() as session:
        await session.execute(update(AppInstallation).values(expires_at=utcnow()))
    before = (await local_app.oauth())["refreshes"]
    # Two sessions stand for two worker processes: their own caches, one database.
    first = AppSession(local_app.settings, local_app.db, local_app.http)
    second = AppSession(local_app.settings, local_app.db, local_app.http)
    got = await asyncio.gather(*(s.credentials() for s in (first, second, first, second)))
    tokens = {getattr(c, "token", None) for c in got}
    assert len(tokens) == 1 and None not in tokens
    state = await local_app.oauth()
    assert state["refreshes"] == before + 1 and state["refused"] == 0
    stored = await local_app.installation()
    assert stored is not None and stored.version == row.version + 1
    # The one stored pair is the live one: the next refresh with it works.
    async with local_app.db.unit_of_work() as session:
        await session.execute(update(AppInstallation).values(expires_at=utcnow()))
    third = AppSession(local_app.settings, local_app.db, local_app.http)
    assert getattr(await third.credentials(), "token", None) not in (None, *tokens)


async def test_a_refused_refresh_keeps_the_jobs_until_the_application_is_installed_again(
    local_app: LocalApp,
) -> None:
    local_app.worker_session().recheck_s = 0.05  # how often a blocked worker looks again
    await local_app.install()
    await local_app.settle()
    task_id = await local_app.person_task("x", tags=[])
    await local_app.settle()
    # Uninstalled while b24mw did not hear of it: every token is revoked.
    await local_app.emulator_settings(events_enabled=False)
    (await local_app.control.post("/_emulator/oauth/uninstall")).raise_for_status()
    await local_app.emulator_settings(events_enabled=True)
    [job_id] = await comments(local_app.db, local_app.settings, (task_id, "kept"))

    await local_app.worker.drain(timeout=10)
    [job] = [j for j in await jobs(local_app.db) if j.id == job_id]
    assert (job.status, job.attempts) == ("pending", 1)
    assert job.error_history[-1]["code"] == "OAUTH_REFRESH_REFUSED"
    assert job.last_error is not None
    assert "invalid_client" in job.last_error and "install the application again" in job.last_error
    row = await local_app.installation()
    assert row is not None and row.state == "refused"
    assert row.last_error is not None and "invalid_client" in row.last_error
    # While refused nothing is claimed, so no attempt is spent, however long it takes.
    calls = len(rest_calls(local_app))
    for _ in range(3):
        await local_app.worker.run_once()
    [job] = [j for j in await jobs(local_app.db) if j.id == job_id]
    assert (job.status, job.attempts) == ("pending", 1)
    assert len(rest_calls(local_app)) == calls

    await local_app.install()
    await asyncio.sleep(0.1)  # the job's retry delay, and the worker's next look
    await local_app.settle()
    [job] = [j for j in await jobs(local_app.db) if j.id == job_id]
    assert (job.status, job.attempts) == ("done", 2)
    assert [text_of(c["text"]) for c in (await local_app.task(task_id))["comments"]] == ["kept"]


async def test_the_uninstall_event_stops_calls_at_once(local_app: LocalApp) -> None:
    await local_app.install()
    await local_app.settle()
    task_id = await local_app.person_task("x", tags=[])
    await local_app.settle()
    (await local_app.control.post("/_emulator/oauth/uninstall")).raise_for_status()
    await local_app.portal.events.join()
    row = await local_app.installation()
    assert row is not None and row.state == "uninstalled"

    [job_id] = await comments(local_app.db, local_app.settings, (task_id, "after uninstall"))
    local_app.worker_session().recheck_s = 0  # production: within 5 s
    calls = len(rest_calls(local_app))
    await local_app.worker.drain(timeout=5)
    [job] = [j for j in await jobs(local_app.db) if j.id == job_id]
    # Known before any call: not even the first attempt is spent.
    assert (job.status, job.attempts) == ("pending", 0)
    assert len(rest_calls(local_app)) == calls


async def test_an_uninstall_event_without_the_stored_token_is_refused(
    local_app: LocalApp,
) -> None:
    await local_app.install()
    forged = {
        "event": "ONAPPUNINSTALL",
        "auth[member_id]": local_app.portal.config.portal_member_id,
        "auth[application_token]": "0" * 32,
    }
    response = await local_app.client.post(
        "/api/v1/webhooks/bitrix24/install",
        data=forged,
    )
    assert response.status_code == 401
    row = await local_app.installation()
    assert row is not None and row.state == "active"
    assert [s["reason"] for s in local_app.siem_lines()] == ["uninstall_unverified"]


async def test_the_oauth_server_being_down_is_retried_later_not_refused(
    db: Database, tmp_path: Path
) -> None:
    app = await open_local_app(db, tmp_path)
    try:
        await app.install()
        await app.settle()
        task_id = await app.person_task("x", tags=[])
        await app.settle()
        (await app.control.post("/_emulator/oauth/expire")).raise_for_status()
        down = httpx.AsyncClient(
            mounts={
                "https://portal.test": httpx.ASGITransport(app=app.emulator),
                "https://oauth.test": httpx.ASGITransport(app=_bad_gateway),
            }
        )
        session = app.worker_session()
        session.server.http = down
        [job_id] = await comments(db, app.settings, (task_id, "later"))
        await app.worker.drain(timeout=5)
        [job] = [j for j in await jobs(db) if j.id == job_id]
        assert job.status == "pending"
        assert (job.last_error or "").startswith("OAUTH_SERVER_UNAVAILABLE")
        row = await app.installation()
        assert row is not None and row.state == "active"  # not refused: tried again later

        # While it backs off, nothing is claimed and no attempt is spent.
        attempts = job.attempts
        await app.worker.run_once()
        [job] = [j for j in await jobs(db) if j.id == job_id]
        assert job.attempts == attempts
        await down.aclose()

        session.server.http = app.http
        assert session._block is not None
        session._block.until = 0  # the backoff is over
        await asyncio.sleep(0.06)  # the job's own retry delay
        await app.worker.drain(timeout=10)
        [job] = [j for j in await jobs(db) if j.id == job_id]
        assert job.status == "done"
        assert [text_of(c["text"]) for c in (await app.task(task_id))["comments"]] == ["later"]
    finally:
        await app.close()


async def _bad_gateway(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 502, "headers": []})
    await send({"type": "http.response.body", "body": b"<html>502 Bad Gateway</html>"})


async def test_an_event_with_the_application_token_is_accepted_by_any_api_process(
    local_app: LocalApp,
) -> None:
    from b24mw.app import create_app
    from b24mw.siem import open_stream
    from b24mw.webhooks.runtime import build_runtime, install_runtime

    sent = await local_app.install()
    # Another API process: it never saw the installation.
    other = create_app(local_app.settings, database=local_app.db)
    install_runtime(
        other, build_runtime(local_app.settings, siem=open_stream(local_app.settings.siem_sink))
    )
    event = {
        "event": "ONTASKADD",
        "data[FIELDS_AFTER][ID]": "5",
        "ts": "1766047124",
        "auth[domain]": "portal.test",
        "auth[member_id]": sent["member_id"],
        "auth[application_token]": sent["application_token"],
    }
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=other), base_url="http://b24mw.test"
    ) as client:
        accepted = await client.post("/api/v1/webhooks/bitrix24", data=event)
        assert accepted.status_code == 200 and accepted.json() == {"status": "accepted"}
        forged = await client.post(
            "/api/v1/webhooks/bitrix24", data={**event, "auth[application_token]": "f" * 32}
        )
        assert forged.status_code == 401
    await other.state.webhooks.aclose()


async def test_a_token_another_process_replaced_is_picked_up_not_refreshed_again(
    local_app: LocalApp,
) -> None:
    await local_app.install()
    await local_app.settle()  # the worker now holds the token in memory
    task_id = await local_app.person_task("x", tags=[])
    await local_app.settle()
    # Another process refreshes; the portal retires the token this worker holds.
    async with local_app.db.unit_of_work() as session:
        await session.execute(update(AppInstallation).values(expires_at=utcnow()))
    other = AppSession(local_app.settings, local_app.db, local_app.http)
    assert getattr(await other.credentials(), "token", None)
    refreshes = (await local_app.oauth())["refreshes"]

    [job_id] = await comments(local_app.db, local_app.settings, (task_id, "picked up"))
    await local_app.worker.drain(timeout=10)
    [job] = [j for j in await jobs(local_app.db) if j.id == job_id]
    assert (job.status, job.attempts, job.error_history) == ("done", 1, [])
    assert (await local_app.oauth())["refreshes"] == refreshes  # no second refresh
    [refused] = [c for c in rest_calls(local_app) if c["status"] == 401]
    assert refused["error"] == "invalid_token"
