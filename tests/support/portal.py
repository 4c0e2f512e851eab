"""The whole loop in one process: the Bitrix24 emulator delivers real events
to our API (signed by its proxy mode, or with the application token only),
and a real worker reads from and writes to the emulator."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from b24mw.couriers import service as couriers
from b24mw.couriers.schemas import CourierCreate
from b24mw.emulator.app import create_app as create_emulator
from b24mw.emulator.config import EmulatorConfig
from b24mw.kit.db import Database
from b24mw.models.ops import WebhookInbox
from b24mw.models.orders import InstantOrder
from b24mw.outbox.worker import Worker
from tests.support.auth import auth
from tests.support.clock import Clock
from tests.support.webhooks import APP_TOKEN, SECRET, URL, Hook, open_hook

EMULATOR = "http://emulator"
PERSON = 42  # a manager clicking in the portal; user 1 is our REST user
COURIER_USER = 17

# A well-formed instant order as a manager types it in a task.
ORDER = """Клиент на углу, #instant_order
- SKU-1 | Чехол | 2 | 490,00
- SKU-2 | Зарядка USB-C | 1 | 1 290.50
customer: Иван Петров
phone: 8 912 345-67-89
note: позвонить за час
"""


@dataclass
class Portal:
    hook: Hook
    emulator: Any
    http: httpx.AsyncClient
    worker: Worker
    db: Database
    clock: Clock | None = None

    @property
    def portal(self) -> Any:
        return self.emulator.state.portal

    async def create_task(
        self,
        description: str,
        *,
        tags: list[str] | None = None,
        responsible_id: int = COURIER_USER,
        title: str = "Заказ с улицы",
    ) -> int:
        response = await self.http.post(
            "/_emulator/person/tasks",
            json={
                "title": title,
                "description": description,
                "responsible_id": responsible_id,
                "tags": ["instant_order"] if tags is None else tags,
                "created_by": PERSON,
            },
        )
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    async def comment(
        self, task_id: int, text: str, *, author_id: int, files: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """A person's comment (on the new card: a message of the task's chat);
        ``files``: ``{"name"}`` uploads a file, ``{"id"}`` attaches one again."""
        body: dict[str, Any] = {"author_id": author_id, "text": text}
        if files is not None:
            body["files"] = files
        response = await self.http.post(f"/_emulator/person/tasks/{task_id}/comments", json=body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def settle(self) -> None:
        """Deliver every event and work until nothing is left (our own
        comments raise events too)."""
        for _ in range(10):
            await self.portal.events.join()
            before = len(self.portal.events.log)
            await self.worker.drain(timeout=30)
            await self.portal.events.join()
            if len(self.portal.events.log) == before:
                return
        raise AssertionError("events keep coming")

    async def task(self, task_id: int) -> dict[str, Any]:
        response = await self.http.get(f"/_emulator/tasks/{task_id}")
        data: dict[str, Any] = response.json()
        return data

    async def comments(self, task_id: int) -> list[str]:
        return [c["text"] for c in (await self.task(task_id))["comments"]]

    async def orders(self) -> list[dict[str, Any]]:
        response = await self.hook.client.get("/api/v1/ww/orders", headers=auth("admin"))
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def history(self, order_id: int) -> list[dict[str, Any]]:
        response = await self.hook.client.get(
            f"/api/v1/ww/orders/{order_id}/events?page_size=100", headers=auth("admin")
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def inbox(self) -> list[WebhookInbox]:
        async with self.db.reader() as session:
            rows = await session.execute(select(WebhookInbox).order_by(WebhookInbox.id))
            return list(rows.scalars())

    async def order_rows(self) -> list[InstantOrder]:
        async with self.db.reader() as session:
            return list((await session.execute(select(InstantOrder))).scalars())

    async def close(self) -> None:
        await self.worker.aclose()
        await self.http.aclose()
        await self.hook.close()
        await self.portal.aclose()


async def add_courier(db: Database, courier_id: str, b24_user_id: int, name: str) -> None:
    async with db.unit_of_work() as session:
        await couriers.create(
            session, CourierCreate(id=courier_id, display_name=name, b24_user_id=b24_user_id)
        )


async def open_portal(
    db: Database,
    tmp_path: Path,
    *,
    signed: bool = True,
    clock: Clock | None = None,
    task_card: str = "classic",
    **overrides: object,
) -> Portal:
    """``clock``: one manual clock for the portal (dates, event ``ts``, signing
    time) and our timestamp check, so tests decide which second things happen in.
    ``task_card``: the portal's task card, ``classic`` or ``new`` (task chats)."""
    settings: dict[str, object] = {
        "b24_url": f"{EMULATOR}/rest/1/emulator/",
        "b24_rps": 200.0,
        "b24_rpm": 100_000,
        "b24_burst": 200,
        "outbox_poll_s": 0.01,
        "webhook_auth": "hmac" if signed else "token",
    }
    settings.update(overrides)
    hook = await open_hook(db, tmp_path, clock=clock, **settings)
    config = EmulatorConfig(
        handler_url=f"http://testserver{URL}",
        handler_transport=httpx.ASGITransport(app=hook.app),
        sign_secret=SECRET if signed else None,
        application_token=APP_TOKEN,
        # The bucket runs on the clock too: off, so a still clock never fills it.
        rps=0 if clock is not None else 1000.0,
        burst=1000.0,
        task_card=task_card,
    )
    if clock is not None:
        config.clock = clock
    emulator = create_emulator(config)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator), base_url=EMULATOR)
    worker = Worker(hook.settings, db, http=http)
    await add_courier(db, "c-17", COURIER_USER, "Пётр Курьеров")
    return Portal(hook, emulator, http, worker, db, clock)


async def gather(*aws: Any) -> list[Any]:
    return list(await asyncio.gather(*aws))
