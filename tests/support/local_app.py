"""b24mw as a local application, in one process: the emulator is the portal
(``https://portal.test``) and the OAuth server (``https://oauth.test``); it
POSTs the installation and the events to our API, and a real worker calls it
with the installed application's tokens."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from b24mw.app import create_app
from b24mw.b24app.install import Installer
from b24mw.b24app.oauth_server import TokenServer
from b24mw.b24app.runtime import AppRuntime, install_runtime
from b24mw.b24app.session import AppSession
from b24mw.emulator.app import create_app as create_emulator
from b24mw.emulator.config import EmulatorConfig
from b24mw.kit.db import Database
from b24mw.models.b24app import AppInstallation
from b24mw.models.history import IntegrationLog
from b24mw.models.ops import WebhookInbox
from b24mw.outbox.worker import Worker
from b24mw.settings import Settings
from b24mw.siem import open_stream
from b24mw.webhooks.runtime import build_runtime
from b24mw.webhooks.runtime import install_runtime as install_webhooks
from tests.support.auth import auth
from tests.support.config import make_settings

PORTAL = "https://portal.test"
OAUTH = "https://oauth.test/oauth/token/"
API = "http://b24mw.test"
INSTALL_URL = f"{API}/api/v1/webhooks/bitrix24/install"
CLIENT_ID = "local.6650a1b2c3d4e5.12345678"
CLIENT_SECRET = "xY7pQ2rS9tU4vW1zA3bC5dE8fG0hJ6kL"
COURIER_USER = 17
PERSON = 42


def oauth_settings(db: Database, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "b24_auth": "oauth",
        "b24_portal_url": PORTAL,
        "b24_client_id": CLIENT_ID,
        "b24_client_secret": CLIENT_SECRET,
        "b24_oauth_server": OAUTH,
        "b24_rps": 200.0,
        "b24_rpm": 100_000,
        "b24_burst": 200,
        "b24_timeout_s": 5.0,
        "outbox_poll_s": 0.01,
        "outbox_retry_delays": "0.05,0.05,0.05,0.05",
        "webhook_auth": "token",
        "siem_sink": f"file://{tmp_path}/siem.jsonl",
        "event_sinks": f"file://{tmp_path}/events.jsonl",
    }
    values.update(overrides)
    return make_settings(db.url, **values)


@dataclass
class LocalApp:
    """The API, a worker and the emulator wired as a portal with b24mw installed."""

    settings: Settings
    db: Database
    api: Any
    client: httpx.AsyncClient
    emulator: Any
    control: httpx.AsyncClient
    http: httpx.AsyncClient
    worker: Worker
    siem_path: Path

    @property
    def portal(self) -> Any:
        return self.emulator.state.portal

    async def install(self, **body: Any) -> dict[str, Any]:
        response = await self.control.post(
            "/_emulator/oauth/install", json={"handler_url": INSTALL_URL, **body}
        )
        assert response.status_code == 201, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def oauth(self, **changes: Any) -> dict[str, Any]:
        if changes:
            response = await self.control.post("/_emulator/oauth", json=changes)
        else:
            response = await self.control.get("/_emulator/oauth")
        assert response.status_code == 200, response.text
        state: dict[str, Any] = response.json()
        return state

    async def emulator_settings(self, **changes: Any) -> None:
        (await self.control.post("/_emulator/settings", json=changes)).raise_for_status()

    def worker_session(self) -> AppSession:
        """The worker's side of the seam (its token cache)."""
        assert self.worker.context.b24 is not None
        session = self.worker.context.b24.client.target
        assert isinstance(session, AppSession)
        return session

    async def db_inbox_payloads(self) -> list[dict[str, Any]]:
        async with self.db.reader() as session:
            rows = (await session.execute(select(WebhookInbox.payload))).scalars().all()
        return list(rows)

    async def settle(self, timeout: float = 30) -> None:  # noqa: ASYNC109
        """Deliver every event and work until nothing is left."""
        for _ in range(10):
            await self.portal.events.join()
            before = len(self.portal.events.log)
            await self.worker.drain(timeout=timeout)
            await self.portal.events.join()
            if len(self.portal.events.log) == before:
                return
        raise AssertionError("events keep coming")

    async def installation(self) -> AppInstallation | None:
        async with self.db.reader() as session:
            rows = (await session.execute(select(AppInstallation))).scalars().all()
        assert len(rows) <= 1
        return rows[0] if rows else None

    async def log_text(self) -> str:
        """Every integration_log row as JSON text (to look for leaked secrets)."""
        async with self.db.reader() as session:
            rows = (await session.execute(select(IntegrationLog))).scalars().all()
        return json.dumps(
            [[r.endpoint, r.request_json, r.response_json, r.error_code] for r in rows],
            ensure_ascii=False,
        )

    def siem_lines(self) -> list[dict[str, Any]]:
        if not self.siem_path.exists():
            return []
        return [json.loads(line) for line in self.siem_path.read_text().splitlines()]

    async def person_task(self, description: str, *, tags: list[str] | None = None) -> int:
        response = await self.control.post(
            "/_emulator/person/tasks",
            json={
                "title": "Заказ с улицы",
                "description": description,
                "responsible_id": COURIER_USER,
                "tags": ["instant_order"] if tags is None else tags,
                "created_by": PERSON,
            },
        )
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    async def task(self, task_id: int) -> dict[str, Any]:
        response = await self.control.get(f"/_emulator/tasks/{task_id}")
        assert response.status_code == 200, response.text
        task: dict[str, Any] = response.json()
        return task

    async def orders(self) -> list[dict[str, Any]]:
        response = await self.client.get("/api/v1/ww/orders", headers=auth("admin"))
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def close(self) -> None:
        await self.worker.aclose()
        await self.client.aclose()
        await self.control.aclose()
        await self.http.aclose()
        await self.api.state.webhooks.aclose()
        await self.portal.aclose()


async def open_local_app(
    db: Database, tmp_path: Path, *, emulator: dict[str, Any] | None = None, **overrides: Any
) -> LocalApp:
    settings = oauth_settings(db, tmp_path, **overrides)
    api = create_app(settings, database=db)
    install_webhooks(api, build_runtime(settings, siem=open_stream(settings.siem_sink)))
    emulator_app = create_emulator(
        EmulatorConfig(
            domain="portal.test",
            oauth_client_id=CLIENT_ID,
            oauth_client_secret=CLIENT_SECRET,
            handler_transport=httpx.ASGITransport(app=api),
            rps=1000.0,
            burst=1000.0,
            **(emulator or {}),
        )
    )
    to_emulator = httpx.ASGITransport(app=emulator_app)
    http = httpx.AsyncClient(mounts={PORTAL: to_emulator, "https://oauth.test": to_emulator})
    # The API verifies installations at the OAuth server through the same mounts.
    install_runtime(api, AppRuntime(http, Installer(settings, db, TokenServer(settings, http))))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url=API)
    control = httpx.AsyncClient(transport=to_emulator, base_url=PORTAL)
    worker = Worker(settings, db, http=http, worker_id="oauth-worker")
    return LocalApp(
        settings, db, api, client, emulator_app, control, http, worker, tmp_path / "siem.jsonl"
    )
