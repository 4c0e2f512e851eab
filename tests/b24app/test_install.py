"""The installation handler: genuine installations are stored and their events
bound; forged, replayed, foreign and malformed ones are refused."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import httpx
from sqlalchemy import select

from b24mw.kit.db import Database
from b24mw.models.b24app import AppInstallation
from tests.support.local_app import API, INSTALL_URL, LocalApp, open_local_app
from tests.support.problems import assert_problem

INSTALL = "/api/v1/webhooks/bitrix24/install"
FORM = {"content-type": "application/x-www-form-urlencoded"}


async def test_installation_stores_verified_tokens_and_binds_the_event_handlers(
    local_app: LocalApp,
) -> None:
    sent = await local_app.install()
    assert sent["status"] == 200, sent["body"]
    assert '"status":"installed"' in sent["body"]

    row = await local_app.installation()
    assert row is not None and row.state == "active"
    assert row.member_id == sent["member_id"]
    assert row.application_token == sent["application_token"]
    assert row.client_endpoint == "https://portal.test/rest/"
    assert row.user_id == 1 and row.handler_base == API
    # Verified by exchanging the delivered refresh token: the stored pair is the new one.
    assert row.refresh_token != sent["form"]["auth[refresh_token]"]
    assert row.access_token != sent["form"]["auth[access_token]"]
    assert (await local_app.oauth())["refreshes"] == 1

    await local_app.settle()
    bindings = {(b["event"], b["handler"]) for b in (await local_app.oauth())["bindings"]}
    hook = f"{API}/api/v1/webhooks/bitrix24"
    assert bindings == {
        ("ONTASKADD", hook),
        ("ONTASKUPDATE", hook),
        ("ONTASKDELETE", hook),
        ("ONTASKCOMMENTADD", hook),
        ("ONTASKCOMMENTUPDATE", hook),
        ("ONCRMACTIVITYADD", hook),
        ("ONCRMACTIVITYUPDATE", hook),
        ("ONSESSIONSTART", hook),
        ("ONSESSIONFINISH", hook),
        ("ONOPENLINEMESSAGEADD", hook),
        *(
            (f"ONCRM{kind}{action}", hook)
            for kind in ("DEAL", "LEAD")
            for action in ("ADD", "UPDATE", "DELETE")
        ),
        ("ONAPPUNINSTALL", INSTALL_URL),
    }
    assert (await local_app.installation()).events_bound_at is not None  # type: ignore[union-attr]
    # Once bound, nothing is bound twice.
    binds = len(await_calls(local_app, "event.bind"))
    await local_app.worker.drain(timeout=5)
    assert len(await_calls(local_app, "event.bind")) == binds == 17


def await_calls(local_app: LocalApp, method: str) -> list[dict[str, object]]:
    return local_app.portal.calls.since(0, method)


async def test_tokens_never_reach_the_integration_log(local_app: LocalApp) -> None:
    sent = await local_app.install()
    await local_app.settle()
    row = await local_app.installation()
    assert row is not None
    text = await local_app.log_text()
    assert "ONAPPINSTALL" in text and "oauth/token" not in text  # the install logs its check
    for secret in (
        sent["form"]["auth[access_token]"],
        sent["form"]["auth[refresh_token]"],
        sent["application_token"],
        row.access_token,
        row.refresh_token,
        local_app.settings.b24_client_secret.get_secret_value(),  # type: ignore[union-attr]
    ):
        assert secret not in text


async def test_a_replayed_installation_request_is_refused(local_app: LocalApp) -> None:
    sent = await local_app.install()
    before = await local_app.installation()
    # The same bytes again: their refresh token was spent by the first verification.
    replay = await local_app.client.post(INSTALL, content=urlencode(sent["form"]), headers=FORM)
    assert replay.status_code == 401
    assert replay.json()["code"] == "auth.webhook_rejected"
    after = await local_app.installation()
    assert before is not None and after is not None
    assert (after.version, after.refresh_token) == (before.version, before.refresh_token)
    [line] = [s for s in local_app.siem_lines() if s["event"] == "b24app_install_rejected"]
    assert line["reason"] == "install_unverified" and line["path"] == INSTALL


async def test_forged_tokens_are_refused_and_nothing_is_stored(local_app: LocalApp) -> None:
    state = await local_app.oauth()
    forged = {
        "event": "ONAPPINSTALL",
        "auth[access_token]": "a" * 70,
        "auth[refresh_token]": "b" * 70,
        "auth[domain]": "portal.test",
        "auth[member_id]": local_app.portal.config.portal_member_id,
        "auth[application_token]": "c" * 32,
        "auth[client_endpoint]": "https://evil.test/rest/",
    }
    response = await local_app.client.post(INSTALL, content=urlencode(forged), headers=FORM)
    assert response.status_code == 401
    assert await local_app.installation() is None
    assert state["installed"] is False
    assert [s["reason"] for s in local_app.siem_lines()] == ["install_unverified"]


async def test_an_installation_in_another_portal_is_refused(db: Database, tmp_path: Path) -> None:
    # The same application keys, but the portal is not the one b24mw serves.
    app = await open_local_app(db, tmp_path, b24_portal_url="https://other.test")
    try:
        sent = await app.install()
        assert sent["status"] == 401
        assert await app.installation() is None
        assert [s["reason"] for s in app.siem_lines()] == ["install_wrong_portal"]
        # Refused before the token was spent: the portal's pair still works.
        assert (await app.oauth())["refreshes"] == 0
    finally:
        await app.close()


async def test_a_body_that_is_no_installation_is_400_naming_the_fields(
    local_app: LocalApp,
) -> None:
    body = {"event": "ONAPPINSTALL", "auth[domain]": "portal.test"}
    response = await local_app.client.post(INSTALL, content=urlencode(body), headers=FORM)
    assert_problem(response, 400, "payload.malformed")
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"auth[refresh_token]", "auth[member_id]"}
    other = await local_app.client.post(
        INSTALL, content=urlencode({"event": "ONTASKADD"}), headers=FORM
    )
    assert_problem(other, 400, "payload.malformed")
    assert other.json()["errors"][0]["field"] == "event"
    junk = await local_app.client.post(
        INSTALL, content=b"\xff\xfe", headers={"content-type": "application/json"}
    )
    assert_problem(junk, 400, "payload.malformed")


async def test_the_handler_is_404_in_webhook_mode(local_app: LocalApp, db: Database) -> None:
    from b24mw.app import create_app
    from tests.support.config import make_settings

    api = create_app(make_settings(db.url), database=db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url=API) as c:
        response = await c.post(INSTALL, content=b"event=ONAPPINSTALL", headers=FORM)
    assert_problem(response, 404, "not_found")


async def test_the_frame_form_is_stored_and_answered_with_the_finishing_page(
    local_app: LocalApp,
) -> None:
    sent = await local_app.install(form="frame")
    assert sent["status"] == 200
    assert "BX24.installFinish()" in sent["body"]
    row = await local_app.installation()
    assert row is not None and row.application_token == sent["application_token"]
    assert row.refresh_token != sent["form"]["REFRESH_ID"]


async def test_reinstalling_replaces_the_tokens_and_binds_again(local_app: LocalApp) -> None:
    first = await local_app.install()
    await local_app.settle()
    old = await local_app.installation()
    second = await local_app.install()
    assert second["application_token"] != first["application_token"]
    new = await local_app.installation()
    assert old is not None and new is not None
    assert new.version > old.version and new.events_bound_at is None
    await local_app.settle()
    # task, CRM, chat and uninstall handlers
    assert len((await local_app.oauth())["bindings"]) == 17
    async with local_app.db.reader() as session:
        assert len((await session.execute(select(AppInstallation))).scalars().all()) == 1


async def test_the_admin_sees_the_installation_but_never_a_token(local_app: LocalApp) -> None:
    from tests.support.auth import auth

    empty = await local_app.client.get("/api/v1/admin/b24app", headers=auth("admin"))
    assert empty.status_code == 200 and empty.json() == {
        **{k: None for k in empty.json() if k not in ("auth", "installed")},
        "auth": "oauth",
        "installed": False,
    }
    sent = await local_app.install()
    await local_app.settle()
    status = await local_app.client.get("/api/v1/admin/b24app", headers=auth("admin"))
    body = status.json()
    assert body["installed"] is True and body["state"] == "active"
    assert body["member_id"] == sent["member_id"] and body["user_id"] == 1
    assert body["events_bound_at"] is not None and body["expires_at"].endswith("Z")
    row = await local_app.installation()
    assert row is not None
    for secret in (row.access_token, row.refresh_token, sent["application_token"]):
        assert secret not in status.text
    courier = await local_app.client.get("/api/v1/admin/b24app", headers=auth("courier", "c1"))
    assert courier.status_code == 403


async def test_opening_the_application_page_later_keeps_the_installation(
    local_app: LocalApp,
) -> None:
    await local_app.install(form="frame")
    before = await local_app.installation()
    refreshes = (await local_app.oauth())["refreshes"]
    # Someone opens the application: the portal POSTs the same form with their tokens.
    again = await local_app.client.post(
        INSTALL,
        content=urlencode({"AUTH_ID": "a" * 70, "REFRESH_ID": "b" * 70, "member_id": "m"}),
        headers=FORM,
        params={"DOMAIN": "portal.test", "PROTOCOL": "1"},
    )
    assert again.status_code == 200 and "BX24.installFinish()" in again.text
    after = await local_app.installation()
    assert before is not None and after is not None
    assert (after.version, after.refresh_token) == (before.version, before.refresh_token)
    assert (await local_app.oauth())["refreshes"] == refreshes
