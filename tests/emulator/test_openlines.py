"""Open lines: sessions, their messages, the CRM activity per session and its events."""

from __future__ import annotations

from typing import Any

from b24mw.emulator.state.store import Store

from .conftest import Emulator, Receiver
from .test_events import _delivered

SESSIONS = "/_emulator/person/openlines/sessions"


async def start(emu: Emulator, **body: Any) -> dict[str, Any]:
    response = await emu.client.post(SESSIONS, json={"line_id": 3, "connector": "telegram", **body})
    assert response.status_code == 201, response.text
    session: dict[str, Any] = response.json()
    return session


async def write(emu: Emulator, session_id: int, text: str, sender: str = "client") -> int:
    response = await emu.client.post(
        f"{SESSIONS}/{session_id}/messages", json={"from": sender, "text": text}
    )
    assert response.status_code == 201, response.text
    message_id: int = response.json()["id"]
    return message_id


async def test_a_session_creates_a_crm_activity_and_fires_its_add_event(
    hooked: Emulator, receiver: Receiver
) -> None:
    session = await start(hooked, client_name="Anna", crm_entity="D_12")
    [form] = await _delivered(hooked, receiver)
    assert form["event"] == "ONCRMACTIVITYADD"
    activity_id = form["data[FIELDS][ID]"]
    activity = (await hooked.ok("crm.activity.get", {"id": activity_id}))["result"]
    assert activity["PROVIDER_ID"] == "IMOPENLINES_SESSION"
    assert activity["ASSOCIATED_ENTITY_ID"] == str(session["id"])
    assert (activity["OWNER_TYPE_ID"], activity["OWNER_ID"]) == ("2", "12")
    assert activity["COMPLETED"] == "N"


async def test_without_a_crm_entity_the_session_gets_a_new_lead(emu: Emulator) -> None:
    session = await start(emu)
    assert session["crm_entity"].startswith("L_")


async def test_a_message_fires_no_crm_event(hooked: Emulator, receiver: Receiver) -> None:
    session = await start(hooked)
    await write(hooked, session["id"], "where is my order 123")
    events = [f["event"] for f in await _delivered(hooked, receiver)]
    assert events == ["ONCRMACTIVITYADD"]


async def test_dialog_get_names_the_session_and_its_last_message(emu: Emulator) -> None:
    session = await start(emu, client_name="Anna")
    first = await write(emu, session["id"], "hello")
    for key, value in (
        ("CHAT_ID", session["chat_id"]),
        ("DIALOG_ID", f"chat{session['chat_id']}"),
        ("SESSION_ID", session["id"]),
        ("USER_CODE", session["user_code"]),
    ):
        dialog = (await emu.ok("imopenlines.dialog.get", {key: value}))["result"]
        assert dialog["last_message_id"] == first
        assert dialog["entity_id"] == session["user_code"]
        assert dialog["entity_data_1"].split("|")[5] == str(session["id"])
    second = await write(emu, session["id"], "anyone?")
    dialog = (await emu.ok("imopenlines.dialog.get", {"CHAT_ID": session["chat_id"]}))["result"]
    assert dialog["last_message_id"] == second > first


async def test_dialog_get_of_an_unknown_chat_is_access_error(emu: Emulator) -> None:
    response = await emu.call("imopenlines.dialog.get", {"CHAT_ID": 999999})
    assert response.status_code == 400
    assert response.json()["error"] == "ACCESS_ERROR"


async def test_history_keys_messages_by_id_and_flags_clients_and_bots(emu: Emulator) -> None:
    session = await start(emu, client_name="Anna")
    client = await write(emu, session["id"], "where is my order 123")
    bot = await write(emu, session["id"], "An operator will answer soon", "bot")
    operator = await write(emu, session["id"], "[b]Checking[/b]", "operator")
    history = (await emu.ok("imopenlines.session.history.get", {"SESSION_ID": session["id"]}))[
        "result"
    ]
    assert history["sessionId"] == session["id"]
    messages = history["message"]
    assert set(messages) == {str(client), str(bot), str(operator)}
    assert messages[str(operator)]["text"] == "[b]Checking[/b]"
    users = history["users"]
    assert users[messages[str(client)]["senderid"]]["connector"] is True
    assert users[messages[str(bot)]["senderid"]]["bot"] is True
    assert users[messages[str(operator)]["senderid"]]["connector"] is False


async def test_history_errors_follow_the_docs(emu: Emulator) -> None:
    missing = await emu.call("imopenlines.session.history.get", {})
    assert missing.json()["error"] == "MISSING_REQUIRED_PARAM"
    unknown = await emu.call("imopenlines.session.history.get", {"SESSION_ID": 999})
    assert unknown.json()["error"] == "ACCESS_DENIED"


async def test_closing_completes_the_activity_and_adds_a_system_message(
    hooked: Emulator, receiver: Receiver
) -> None:
    session = await start(hooked)
    await write(hooked, session["id"], "thanks")
    response = await hooked.client.post(f"{SESSIONS}/{session['id']}/close")
    assert response.json()["status"] == "closed"
    forms = await _delivered(hooked, receiver)
    assert [f["event"] for f in forms] == ["ONCRMACTIVITYADD", "ONCRMACTIVITYUPDATE"]
    activity = (await hooked.ok("crm.activity.get", {"id": session["activity_id"]}))["result"]
    assert activity["COMPLETED"] == "Y"
    history = (await hooked.ok("imopenlines.session.history.get", {"SESSION_ID": session["id"]}))[
        "result"
    ]
    assert "0" in {m["senderid"] for m in history["message"].values()}
    refused = await hooked.client.post(
        f"{SESSIONS}/{session['id']}/messages", json={"from": "client", "text": "late"}
    )
    assert refused.status_code == 409


async def test_crm_chat_get_lists_the_chats_of_a_deal(emu: Emulator) -> None:
    open_one = await start(emu, crm_entity="D_12")
    closed = await start(emu, crm_entity="D_12")
    await start(emu, crm_entity="D_13")
    await emu.client.post(f"{SESSIONS}/{closed['id']}/close")
    active = await emu.ok("imopenlines.crm.chat.get", {"CRM_ENTITY_TYPE": "deal", "CRM_ENTITY": 12})
    assert [c["CHAT_ID"] for c in active["result"]] == [str(open_one["chat_id"])]
    every = await emu.ok(
        "imopenlines.crm.chat.get",
        {"CRM_ENTITY_TYPE": "deal", "CRM_ENTITY": 12, "ACTIVE_ONLY": "N"},
    )
    assert {c["CHAT_ID"] for c in every["result"]} == {
        str(open_one["chat_id"]),
        str(closed["chat_id"]),
    }
    missing = await emu.call("imopenlines.crm.chat.get", {"CRM_ENTITY_TYPE": "deal"})
    assert missing.json()["error"] == "ERROR_ARGUMENT"


async def test_reads_in_a_batch_and_without_the_scope(emu: Emulator) -> None:
    session = await start(emu)
    answer = await emu.ok(
        "batch",
        {
            "halt": 0,
            "cmd": {
                "d": f"imopenlines.dialog.get?CHAT_ID={session['chat_id']}",
                "h": f"imopenlines.session.history.get?SESSION_ID={session['id']}",
            },
        },
    )
    assert answer["result"]["result"]["d"]["id"] == session["chat_id"]
    emu.portal.apply_settings({"webhook_scope": "task,user,im"})
    refused = await emu.call("imopenlines.dialog.get", {"CHAT_ID": session["chat_id"]})
    assert refused.json()["error"] == "insufficient_scope"


async def test_control_routes_check_their_input(emu: Emulator) -> None:
    bad = await emu.client.post(SESSIONS, json={"crm_entity": "deal 12"})
    assert bad.status_code == 400
    unknown = await emu.client.get("/_emulator/openlines/sessions/424242")
    assert unknown.status_code == 404
    session = await start(emu)
    wrong_sender = await emu.client.post(
        f"{SESSIONS}/{session['id']}/messages", json={"from": "robot", "text": "x"}
    )
    assert wrong_sender.status_code == 400
    state = await emu.client.get(f"/_emulator/openlines/sessions/{session['id']}")
    assert state.json()["status"] == "open"


async def test_sessions_survive_the_state_file(emu: Emulator) -> None:
    session = await start(emu, crm_entity="D_12")
    await write(emu, session["id"], "kept")
    again = Store.from_json(emu.portal.store.to_json())
    assert again.ol_sessions[session["id"]].crm_entity == "D_12"
    assert again.activities[session["activity_id"]].associated_entity_id == session["id"]
    assert again.next_session_id == emu.portal.store.next_session_id
