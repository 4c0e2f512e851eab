"""The emulated local application: the OAuth token endpoint, `auth=<token>` REST
calls with the portal's 401 bodies, event binding, installation and uninstallation."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from b24mw.emulator.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

from .conftest import REST, Emulator, EmulatorFactory, Receiver

HOOK = "http://handler/hook"


def _form(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True))


async def install(emu: Emulator, **body: Any) -> dict[str, Any]:
    response = await emu.client.post("/_emulator/oauth/install", json={"handler_url": HOOK, **body})
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def refresh(emu: Emulator, token: str, **params: str) -> httpx.Response:
    query = {
        "grant_type": "refresh_token",
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
        "refresh_token": token,
        **params,
    }
    return await emu.client.get("/oauth/token/", params=query)


async def app_call(emu: Emulator, method: str, token: str | None, **params: Any) -> httpx.Response:
    body = {**params, **({"auth": token} if token is not None else {})}
    return await emu.client.post(f"/rest/{method}", json=body)


@pytest.fixture
async def installed(make_hooked: EmulatorFactory) -> Emulator:
    return await make_hooked()


async def test_installation_posts_the_tokens_as_onappinstall(
    installed: Emulator, receiver: Receiver
) -> None:
    answer = await install(installed, scope="task,user")
    assert answer["status"] == 200
    [(body, headers)] = receiver.requests
    form = _form(body)
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert form["event"] == "ONAPPINSTALL"
    assert {k for k in form if k.startswith("data[")} == {
        "data[VERSION]",
        "data[ACTIVE]",
        "data[INSTALLED]",
        "data[LANGUAGE_ID]",
    }
    assert {k for k in form if k.startswith("auth[")} == {
        f"auth[{k}]"
        for k in (
            "domain",
            "scope",
            "access_token",
            "refresh_token",
            "expires_in",
            "server_endpoint",
            "status",
            "client_endpoint",
            "member_id",
            "application_token",
        )
    }
    assert form["auth[scope]"] == "task,user" and form["auth[status]"] == "L"
    assert form["auth[expires_in]"] == "3600"
    assert form["auth[server_endpoint]"] == "https://oauth.bitrix.info/rest/"
    assert form["auth[application_token]"] == answer["application_token"]
    assert (
        form["auth[member_id]"] == answer["member_id"] == installed.portal.config.portal_member_id
    )


async def test_the_frame_form_carries_the_install_page_fields(
    installed: Emulator, receiver: Receiver
) -> None:
    answer = await install(installed, form="frame")
    [(body, _)] = receiver.requests
    form = _form(body)
    assert {"AUTH_ID", "AUTH_EXPIRES", "REFRESH_ID", "APPLICATION_TOKEN", "member_id"} <= set(form)
    assert form["PLACEMENT"] == "DEFAULT" and form["status"] == "L"
    assert "DOMAIN=" in answer["url"] and "PROTOCOL=0" in answer["url"]


async def test_refresh_rotates_the_pair_and_retires_the_old_tokens(installed: Emulator) -> None:
    form = (await install(installed))["form"]
    first = await refresh(installed, form["auth[refresh_token]"])
    assert first.status_code == 200
    pair = first.json()
    assert set(pair) == {
        "access_token",
        "refresh_token",
        "expires",
        "expires_in",
        "client_endpoint",
        "domain",
        "member_id",
        "scope",
        "server_endpoint",
        "status",
        "user_id",
    }
    assert pair["domain"] == "oauth.bitrix.info" and pair["user_id"] == 1
    assert pair["client_endpoint"] == "http://127.0.0.1:8090/rest/"
    assert pair["refresh_token"] != form["auth[refresh_token]"]

    again = await refresh(installed, form["auth[refresh_token]"])
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    old = await app_call(installed, "user.current", form["auth[access_token]"])
    assert (old.status_code, old.json()["error"]) == (401, "invalid_token")
    new = await app_call(installed, "user.current", pair["access_token"])
    assert new.status_code == 200 and new.json()["result"]["ID"] == "1"
    assert (await refresh(installed, pair["refresh_token"])).status_code == 200


async def test_the_token_endpoint_refuses_what_the_server_refuses(installed: Emulator) -> None:
    form = (await install(installed))["form"]
    token = form["auth[refresh_token]"]
    wrong = await refresh(installed, token, client_secret="nope")
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    grant = await refresh(installed, token, grant_type="password")
    assert (grant.status_code, grant.json()["error"]) == (400, "invalid_request")
    code = await refresh(installed, token, grant_type="authorization_code")
    assert code.json()["error"] == "invalid_grant"
    posted = await installed.client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET,
            "refresh_token": token,
        },
    )
    assert posted.status_code == 200  # a POSTed form works as well
    state = (await installed.client.get("/_emulator/oauth")).json()
    assert (state["refreshes"], state["refused"]) == (1, 3)


async def test_rest_calls_with_a_token_answer_the_portals_401s(installed: Emulator) -> None:
    form = (await install(installed))["form"]
    token = form["auth[access_token]"]
    missing = await app_call(installed, "user.current", None)
    assert missing.status_code == 401
    assert missing.json() == {
        "error": "NO_AUTH_FOUND",
        "error_description": "Wrong authorization data",
    }
    garbage = await app_call(installed, "user.current", "x" * 70)
    assert garbage.json() == {
        "error": "invalid_token",
        "error_description": "The access token provided is invalid.",
    }
    in_query = await installed.client.post(f"/rest/user.current.json?auth={token}")
    assert in_query.status_code == 200
    installed.clock.advance(3600)
    expired = await app_call(installed, "user.current", token)
    assert expired.status_code == 401
    assert expired.json() == {
        "error": "expired_token",
        "error_description": "The access token provided has expired.",
    }
    # The refresh token outlives the access token.
    assert (await refresh(installed, form["auth[refresh_token]"])).status_code == 200


async def test_the_lifetime_and_expiry_are_controllable(installed: Emulator) -> None:
    changed = await installed.client.post("/_emulator/oauth", json={"access_token_lifetime_s": 5})
    assert changed.json()["access_token_lifetime_s"] == 5
    form = (await install(installed))["form"]
    assert form["auth[expires_in]"] == "5"
    expired = await installed.client.post("/_emulator/oauth/expire")
    assert expired.json() == {"expired": 1}
    answer = await app_call(installed, "user.current", form["auth[access_token]"])
    assert answer.json()["error"] == "expired_token"
    bad = await installed.client.post("/_emulator/oauth", json={"access_token_lifetime_s": 0})
    assert bad.status_code == 400
    unknown = await installed.client.post("/_emulator/oauth", json={"lifetime": 5})
    assert unknown.status_code == 400
    no_url = await installed.client.post("/_emulator/oauth/install", json={"handler_url": "x"})
    assert no_url.status_code == 400


async def test_event_binding_needs_the_application_and_is_not_repeated(
    installed: Emulator,
) -> None:
    token = (await install(installed))["form"]["auth[access_token]"]
    by_webhook = await installed.call("event.bind", {"event": "ONTASKADD", "handler": HOOK})
    assert by_webhook.status_code == 403 and by_webhook.json()["error"] == "WRONG_AUTH_TYPE"
    bound = await app_call(installed, "event.bind", token, event="ontaskadd", handler=HOOK)
    assert bound.json()["result"] is True
    twice = await app_call(installed, "event.bind", token, event="ONTASKADD", handler=HOOK)
    assert twice.status_code == 400
    assert twice.json() == {"error": "ERROR_CORE", "error_description": "Handler already binded"}
    unknown = await app_call(installed, "event.bind", token, event="ONNOTHING", handler=HOOK)
    assert unknown.json()["error"] == "ERROR_EVENT_NOT_FOUND"
    listed = await app_call(installed, "event.get", token)
    assert listed.json()["result"] == [{"event": "ONTASKADD", "handler": HOOK, "auth_type": "0"}]
    info = await app_call(installed, "app.info", token)
    assert info.json()["result"]["INSTALLED"] is True
    assert (await installed.call("app.info", {})).json()["error"] == "ACCESS_DENIED"
    gone = await app_call(installed, "event.unbind", token, event="ONTASKADD", handler=HOOK)
    assert gone.json()["result"] == {"count": 1}


async def test_bound_events_carry_the_applications_auth(
    make_emulator: EmulatorFactory, receiver: Receiver
) -> None:
    app_receiver = Receiver()
    transport = httpx.ASGITransport(app=app_receiver.app())
    emu = await make_emulator(handler_transport=transport)
    token = (await install(emu))["form"]["auth[access_token]"]
    app_receiver.requests.clear()
    await app_call(emu, "event.bind", token, event="ONTASKADD", handler=HOOK)
    batch = await emu.client.post(
        "/rest/batch",
        json={
            "auth": token,
            "cmd": {"a": "tasks.task.add?fields[TITLE]=t&fields[RESPONSIBLE_ID]=3"},
        },
    )
    assert batch.status_code == 200 and not batch.json()["result"]["result_error"]
    await emu.portal.events.join()
    [(body, _)] = app_receiver.requests
    form = _form(body)
    state = (await emu.client.get("/_emulator/oauth")).json()
    assert form["event"] == "ONTASKADD"
    assert form["auth[application_token]"] == state["application_token"]
    assert form["auth[status]"] == "L" and form["auth[scope]"] == state["scope"]
    # The event's own token is a working token of the acting user.
    assert (await app_call(emu, "user.current", form["auth[access_token]"])).status_code == 200


async def test_uninstall_revokes_everything_and_tells_the_bound_handler(
    installed: Emulator, receiver: Receiver
) -> None:
    answer = await install(installed)
    token = answer["form"]["auth[access_token]"]
    await app_call(installed, "event.bind", token, event="ONAPPUNINSTALL", handler=HOOK)
    receiver.requests.clear()
    assert (await installed.client.post("/_emulator/oauth/uninstall")).status_code == 200
    await installed.portal.events.join()
    [(body, _)] = receiver.requests
    form = _form(body)
    assert form["event"] == "ONAPPUNINSTALL"
    assert form["auth[application_token]"] == answer["application_token"]
    assert "auth[access_token]" not in form
    call = await app_call(installed, "user.current", token)
    assert call.json()["error"] == "invalid_token"
    gone = await refresh(installed, answer["form"]["auth[refresh_token]"])
    assert (gone.status_code, gone.json()["error"]) == (401, "invalid_client")
    state = (await installed.client.get("/_emulator/oauth")).json()
    assert state["installed"] is False and state["bindings"] == []


async def test_webhook_calls_are_unchanged(installed: Emulator) -> None:
    await install(installed)
    response = await installed.client.post(f"{REST}/user.current", json={})
    assert response.status_code == 200
