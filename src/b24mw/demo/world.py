"""The demo's hands and eyes: people acting through the API and the portal,
and the reads that check what happened (the API, the emulator's control API,
the CloudEvents file, what the 1C stand-in received)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from b24mw.demo.stage import DemoError, Stage
from b24mw.kit.auth import mint_token
from b24mw.models.enums import InboxStatus, OutboxStatus

T = TypeVar("T")
TOKEN_TTL_S = 12 * 3600


async def until(what: str, probe: Callable[[], Awaitable[T | None]], within: float) -> T:
    """Poll ``probe`` until it gives something; a DemoError naming ``what`` when
    it has not within ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        found = await probe()
        if found is not None and found is not False:
            return found
        if time.monotonic() >= deadline:
            raise DemoError(f"{what}: not seen within {within:g} s")
        await asyncio.sleep(0.1)


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise DemoError(what)


@dataclass
class World:
    stage: Stage
    api_url: str
    portal_url: str
    http: httpx.AsyncClient
    timeout: float

    def token(self, role: str, sub: str) -> str:
        return mint_token(self.stage.settings(), role=role, sub=sub, ttl_s=TOKEN_TTL_S)

    async def _request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        try:
            return await self.http.request(method, url, **kw)
        except httpx.HTTPError as exc:
            raise DemoError(f"{method} {url}: {type(exc).__name__}: {exc}") from exc

    # --- b24mw's API, as a person or 1C ------------------------------------

    def _headers(self, role: str, sub: str, write: bool) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token(role, sub)}"}
        if write:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        return headers

    async def api(
        self, method: str, path: str, *, role: str, sub: str, expected: int = 200, **kw: Any
    ) -> httpx.Response:
        write = method not in ("GET", "HEAD")
        response = await self._request(
            method, f"{self.api_url}{path}", headers=self._headers(role, sub, write), **kw
        )
        if response.status_code != expected:
            raise DemoError(
                f"{method} {path} as {role} {sub!r} answered {response.status_code}, "
                f"expected {expected}: {response.text[:500]}"
            )
        return response

    async def api_json(self, method: str, path: str, **kw: Any) -> Any:
        return (await self.api(method, path, **kw)).json()

    async def api_found(self, path: str, *, role: str, sub: str) -> Any | None:
        """A GET of something that may not be there yet: None on 404."""
        response = await self._request(
            "GET", f"{self.api_url}{path}", headers=self._headers(role, sub, False)
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise DemoError(f"GET {path} answered {response.status_code}: {response.text[:500]}")
        return response.json()

    async def outbox_idle(self) -> bool:
        state = await self.api_json("GET", "/api/v1/admin/outbox", role="admin", sub="demo")
        counts = state["counts"]
        dead = counts.get(OutboxStatus.DEAD, 0)
        if dead:
            dlq = await self.api_json("GET", "/api/v1/admin/dlq", role="admin", sub="demo")
            errors = "; ".join(f"{j['kind']}: {j['last_error']}" for j in dlq["items"][:3])
            raise DemoError(f"{dead} outbox job(s) in the dead-letter queue: {errors}")
        return (
            counts.get(OutboxStatus.PENDING, 0) == 0 and counts.get(OutboxStatus.IN_FLIGHT, 0) == 0
        )

    # --- the portal (the built-in emulator) ----------------------------------

    async def portal(self, method: str, path: str, **kw: Any) -> Any:
        response = await self._request(method, f"{self.portal_url}{path}", **kw)
        if response.status_code >= 300:
            raise DemoError(f"the portal refused {method} {path}: {response.text[:300]}")
        return response.json()

    async def task(self, task_id: int) -> dict[str, Any]:
        task: dict[str, Any] = await self.portal("GET", f"/_emulator/tasks/{task_id}")
        return task

    async def tasks(self) -> list[dict[str, Any]]:
        tasks: list[dict[str, Any]] = await self.portal("GET", "/_emulator/tasks")
        return tasks

    async def calls_since(self, seq: int) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = await self.portal(
            "GET", "/_emulator/calls", params={"since": seq}
        )
        return calls

    async def last_call(self) -> int:
        calls = await self.calls_since(0)
        return max((c["seq"] for c in calls), default=0)

    def _inbox(self) -> dict[str, int]:
        # The webhook inbox has no API of its own; the demo's database is its own.
        path = self.stage.root / "b24mw.db"
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            rows = db.execute("SELECT status, count(*) FROM webhook_inbox GROUP BY status")
            return {status: int(n) for status, n in rows}

    async def inbox_idle(self) -> bool:
        """Every event b24mw received has been processed; a DemoError if any
        failed or was refused (the demo's events are all good ones)."""
        counts = await asyncio.to_thread(self._inbox)
        bad = {s: n for s, n in counts.items() if s in (InboxStatus.FAILED, InboxStatus.REJECTED)}
        if bad:
            raise DemoError(f"webhook inbox rows not processed: {bad}")
        return (
            counts.get(InboxStatus.PENDING, 0) == 0 and counts.get(InboxStatus.PROCESSING, 0) == 0
        )

    async def settle(self, since: int, quiet_s: float = 0.5) -> list[dict[str, Any]]:
        """Wait until b24mw has nothing left to send or to read (the events our
        own writes raise come back and are read too) and the portal has seen no
        call for ``quiet_s``; the calls made since ``since``."""
        deadline = time.monotonic() + self.timeout
        last_change, seen = time.monotonic(), -1
        while True:
            calls = await self.calls_since(since)
            if len(calls) != seen:
                seen, last_change = len(calls), time.monotonic()
            idle = await self.outbox_idle() and await self.inbox_idle()
            if idle and time.monotonic() - last_change >= quiet_s:
                return calls
            if time.monotonic() >= deadline:
                raise DemoError(
                    f"b24mw did not finish its Bitrix24 calls within {self.timeout:g} s"
                )
            await asyncio.sleep(0.2)

    # --- files the parts write -------------------------------------------------

    @staticmethod
    def _lines(path: Path) -> list[dict[str, Any]]:
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]

    def cloudevents(self) -> list[dict[str, Any]]:
        return self._lines(self.stage.events_file)

    def onec_received(self) -> list[dict[str, Any]]:
        return self._lines(self.stage.onec_file)
