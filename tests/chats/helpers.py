"""A customer in an open line, as the emulator's person API plays one."""

from __future__ import annotations

from typing import Any

from tests.support.portal import Portal

SESSIONS = "/_emulator/person/openlines/sessions"


async def start(portal: Portal, **body: Any) -> dict[str, Any]:
    response = await portal.http.post(
        SESSIONS, json={"line_id": 1, "connector": "telegram", **body}
    )
    assert response.status_code == 201, response.text
    session: dict[str, Any] = response.json()
    return session


async def write(portal: Portal, session_id: int, text: str, sender: str = "client") -> int:
    response = await portal.http.post(
        f"{SESSIONS}/{session_id}/messages", json={"from": sender, "text": text}
    )
    assert response.status_code == 201, response.text
    message_id: int = response.json()["id"]
    return message_id
