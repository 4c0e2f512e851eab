"""The webhook endpoint under test: an app with a file SIEM sink in a tmp dir and
an injectable clock, and helpers that post events the way Bitrix24 (or the
signing proxy) does."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import select

from b24mw.app import create_app
from b24mw.emulator.wire.phpquery import flatten
from b24mw.kit.db import Database
from b24mw.models.ops import WebhookInbox
from b24mw.settings import Settings
from b24mw.siem import open_stream
from b24mw.webhooks.auth import sign
from b24mw.webhooks.runtime import build_runtime, install_runtime, runtime_of
from tests.support.clock import Clock
from tests.support.config import make_settings

URL = "/api/v1/webhooks/bitrix24"
SECRET = "proxy-secret-current"
OLD_SECRET = "proxy-secret-previous"
APP_TOKEN = "jvh9y1ulvt2m6k5or90v9mg8nn32ozas"
# The one detail every refused webhook gets, whatever the reason (nothing to probe).
GENERIC = "The webhook could not be accepted."


@dataclass
class Hook:
    """The webhook endpoint of one app, with its SIEM file and clock."""

    client: httpx.AsyncClient
    siem_path: Path
    clock: Clock
    settings: Settings
    app: Any
    sent: list[str] = field(default_factory=list)

    async def close(self) -> None:
        await self.client.aclose()
        await runtime_of(self.app).aclose()

    def siem_lines(self) -> list[dict[str, Any]]:
        if not self.siem_path.exists():
            return []
        return [json.loads(line) for line in self.siem_path.read_text().splitlines()]

    async def post_signed(
        self,
        payload: dict[str, Any] | bytes,
        *,
        secret: str = SECRET,
        request_id: str | None = None,
        timestamp: int | None = None,
        as_json: bool = False,
        headers: dict[str, str | None] | None = None,
    ) -> httpx.Response:
        body, content_type = encode(payload, as_json=as_json)
        ts = str(int(self.clock()) if timestamp is None else timestamp)
        all_headers: dict[str, str | None] = {
            "content-type": content_type,
            "x-request-id": request_id or str(uuid.uuid4()),
            "x-request-timestamp": ts,
            "x-signature": sign(secret, ts, body),
            "user-agent": "test-proxy/1.0",
        }
        all_headers.update(headers or {})
        sent = {k: v for k, v in all_headers.items() if v is not None}
        return await self.client.post(URL, content=body, headers=sent)

    async def post_plain(
        self, payload: dict[str, Any] | bytes, *, as_json: bool = False, **headers: str
    ) -> httpx.Response:
        body, content_type = encode(payload, as_json=as_json)
        return await self.client.post(
            URL, content=body, headers={"content-type": content_type, **headers}
        )


def encode(payload: dict[str, Any] | bytes, *, as_json: bool) -> tuple[bytes, str]:
    if isinstance(payload, bytes):
        return payload, "application/x-www-form-urlencoded"
    if as_json:
        return json.dumps(payload).encode(), "application/json"
    return urlencode(flatten(payload)).encode(), "application/x-www-form-urlencoded"


def task_event(task_id: int, name: str = "ONTASKADD", **auth: str) -> dict[str, Any]:
    return {
        "event": name,
        "event_handler_id": "7",
        "data": {
            "FIELDS_BEFORE": "undefined",
            "FIELDS_AFTER": {"ID": str(task_id)},
            "IS_ACCESSIBLE_BEFORE": "N",
            "IS_ACCESSIBLE_AFTER": "undefined",
        },
        "ts": "1766047124",
        "auth": {
            "domain": "portal.example",
            "member_id": "d897063e1ce7c5eb9f04b9751eef5915",
            "application_token": APP_TOKEN,
            **auth,
        },
    }


def webhook_settings(db: Database, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "webhook_secrets": f"{SECRET},{OLD_SECRET}",
        "webhook_app_tokens": APP_TOKEN,
        "siem_sink": f"file://{tmp_path}/siem.jsonl",
        "event_sinks": f"file://{tmp_path}/events.jsonl",
    }
    values.update(overrides)
    return make_settings(db.url, **values)


async def open_hook(
    db: Database, tmp_path: Path, *, clock: Clock | None = None, **overrides: object
) -> Hook:
    settings = webhook_settings(db, tmp_path, **overrides)
    app = create_app(settings, database=db)
    clock = clock or Clock()
    install_runtime(app, build_runtime(settings, clock=clock, siem=open_stream(settings.siem_sink)))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    return Hook(client, tmp_path / "siem.jsonl", clock, settings, app)


async def inbox_rows(db: Database) -> list[WebhookInbox]:
    async with db.reader() as session:
        return list(
            (await session.execute(select(WebhookInbox).order_by(WebhookInbox.id))).scalars()
        )


def assert_generic_401(response: Any) -> None:
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["detail"] == GENERIC
    assert body["code"] == "auth.webhook_rejected"
    assert body["request_id"] == response.headers["x-request-id"]
