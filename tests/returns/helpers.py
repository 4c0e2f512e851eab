"""Builders shared by the returns tests: a valid return body, reads of what a return wrote."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select

from b24mw.kit.db import Database
from b24mw.models.history import HistoryEntry, IntegrationLog
from b24mw.models.ops import OutboxJob
from b24mw.outbox import Outbox
from b24mw.returns.flows import ReturnChannels
from tests.support.auth import auth

URL = "/api/v1/returns"
VALID_IMEI = "490154203237518"
TASK_ID = 4242
# c-1 and c-2 are Bitrix24 users 501/502; c-3 has no Bitrix24 account.
COURIERS = {"c-1": 501, "c-2": 502, "c-3": None}


def line(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sku": "SKU-1",
        "qty": 2,
        "quality": "defect",
        "reason_code": "broken_screen",
        "reason_note": "cracked on delivery",
        "photos": [101, "102"],
        "imei": VALID_IMEI,
        "serial": "SN-1",
    }
    body.update(overrides)
    return body


def return_body(courier_id: str = "c-1", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source": "widget",
        "courier_id": courier_id,
        "order_id_1c": "1C-0001",
        "task_id_b24": TASK_ID,
        "comment": "customer changed their mind",
        "items": [line(), line(sku="SKU-2", qty=1, quality="new", photos=[], imei=None)],
    }
    body.update(overrides)
    return body


async def create_return(
    client: httpx.AsyncClient, courier_id: str = "c-1", **overrides: Any
) -> dict[str, Any]:
    response = await client.post(
        URL, headers=auth("courier", courier_id), json=return_body(courier_id, **overrides)
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def jobs(db: Database) -> list[OutboxJob]:
    async with db.reader() as session:
        rows = await session.execute(select(OutboxJob).order_by(OutboxJob.id))
        return list(rows.scalars())


async def task_events(db: Database, return_id: str) -> list[HistoryEntry]:
    async with db.reader() as session:
        stmt = (
            select(HistoryEntry)
            .where(HistoryEntry.return_id == uuid.UUID(return_id))
            .order_by(HistoryEntry.id)
        )
        return list((await session.execute(stmt)).scalars())


async def log_rows(db: Database, return_id: str) -> list[IntegrationLog]:
    async with db.reader() as session:
        stmt = (
            select(IntegrationLog)
            .where(IntegrationLog.resource_ref == f"returns/{return_id}")
            .order_by(IntegrationLog.id)
        )
        return list((await session.execute(stmt)).scalars())


class ExplodingOutbox(Outbox):
    """Fails after the event and 1C jobs were added: the transaction must roll back."""

    def b24_comment(self, *args: Any, **kwargs: Any) -> OutboxJob:  # type: ignore[override]
        super().b24_comment(*args, **kwargs)
        raise RuntimeError("simulated failure late in the unit of work")


def use_outbox(app: Any, outbox: Outbox) -> None:
    """Swap the running app's outbox, and the return flows' channels built on it
    at start-up (both live in the typed state)."""
    app.state.outbox = outbox
    app.state.return_channels = ReturnChannels.from_settings(app.state.settings, outbox)
