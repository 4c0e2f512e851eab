"""A day's work in miniature, made through the API as people and 1C make it:
every kind of effect b24mw sends (comments, tasks, subtasks, status methods,
CloudEvents), so a drill that breaks something in the middle has all of them
in flight."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from b24mw.models.enums import OrderStatus as S
from tests.support.auth import auth
from tests.support.orders import PATH_TO, delivery_body, order_body

COURIER = "c-17"
COURIER_USER = 17
ORDER_TEXT = "- SKU-1 | Чехол | 2 | 490,00\ncustomer: Иван Петров"


def return_body(task_id: int, courier: str = COURIER) -> dict[str, Any]:
    return {
        "source": "widget",
        "courier_id": courier,
        "task_id_b24": task_id,
        "items": [{"sku": "SKU-1", "qty": 1, "quality": "defect", "reason_code": "broken"}],
    }


@dataclass
class Workload:
    api: httpx.AsyncClient
    portal: httpx.AsyncClient
    tasks: list[int] = field(default_factory=list)
    orders: list[int] = field(default_factory=list)
    returns: list[str] = field(default_factory=list)
    deliveries: list[int] = field(default_factory=list)

    async def post(self, url: str, headers: dict[str, str], body: dict[str, Any]) -> Any:
        response = await self.api.post(url, headers=headers, json=body)
        assert response.status_code in (200, 201), f"{url}: {response.status_code} {response.text}"
        return response.json()

    async def courier(self, courier: str = COURIER, b24_user: int = COURIER_USER) -> None:
        body = {"id": courier, "display_name": f"Курьер {courier}", "b24_user_id": b24_user}
        await self.post("/api/v1/ww/couriers", auth("admin", "boss"), body)

    async def person_task(self, *, tagged: bool = False, responsible: int = COURIER_USER) -> int:
        """A task a manager creates in the portal (tagged: an order in its text)."""
        body: dict[str, Any] = {"title": "Заказ с улицы", "responsible_id": responsible}
        if tagged:
            body |= {"tags": ["instant_order"], "description": ORDER_TEXT}
        response = await self.portal.post("/_emulator/person/tasks", json=body)
        assert response.status_code == 201, response.text
        task_id = int(response.json()["id"])
        self.tasks.append(task_id)
        return task_id

    async def order_walked(self, task_id: int, to: S = S.DONE) -> int:
        """An order on a task, walked through the statuses to ``to``: a comment
        per move, ``start`` on ON_ROUTE, ``complete`` on DONE."""
        body = order_body(task_id_b24=task_id, courier_id=COURIER)
        order = await self.post("/api/v1/ww/orders", auth("admin", "boss"), body)
        for status, role in PATH_TO[to]:
            sub = COURIER if role == "courier" else "boss"
            await self.post(
                f"/api/v1/ww/orders/{order['id']}/status", auth(role, sub), {"status": str(status)}
            )
        self.orders.append(order["id"])
        return int(order["id"])

    async def return_decided(self, task_id: int, decision: str | None = "rejected") -> str:
        """A courier's return on a task, then 1C's decision (rejected: a subtask)."""
        created = await self.post("/api/v1/returns", auth("courier", COURIER), return_body(task_id))
        if decision:
            response = await self.api.patch(
                f"/api/v1/returns/{created['id']}",
                headers=auth("1c", "onec"),
                json={"status": decision},
            )
            assert response.status_code == 200, response.text
        self.returns.append(created["id"])
        return str(created["id"])

    async def delivery(self) -> int:
        """1C's delivery document: a task for the courier."""
        body = delivery_body(external_id_1c=f"ЗК-{uuid.uuid4().hex[:8]}", courier_id=COURIER)
        created = await self.post("/api/v1/deliveries", auth("1c", "erp"), body)
        self.deliveries.append(int(created["id"]))
        return int(created["id"])

    async def mixed(self, rounds: int = 2) -> None:
        """Each round: a delivery, an order walked to DONE, a rejected and an
        accepted return, all on the courier's tasks."""
        for _ in range(rounds):
            await self.delivery()
            await self.order_walked(await self.person_task())
            await self.return_decided(await self.person_task(), "rejected")
            await self.return_decided(await self.person_task(), "accepted")
