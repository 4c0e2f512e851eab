"""Outgoing events, delivered the way Bitrix24's queue server does it.

Form-encoded POST with PHP-style keys, sent from a background task (never inside the
REST response), one attempt each: a failed delivery is logged and not retried. With
a sign secret the emulator also acts as the HMAC-signing proxy the middleware expects.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from b24mw.emulator.config import OAUTH_SERVER_ENDPOINT, EmulatorConfig
from b24mw.emulator.wire.phpquery import flatten

UNDEFINED = "undefined"


@dataclass
class EventSettings:
    """The run-time switches an event is sent with (read when it is emitted)."""

    handler_url: str | None
    events_enabled: bool
    sign_secret: str | None
    application_token: str


@dataclass
class _Pending:
    seq: int
    event: str
    data: dict[str, Any]
    url: str
    sign_secret: str | None
    application_token: str
    # An installed application's handler: its own auth block (emulator/oauth.py).
    auth: dict[str, Any] | None = None


# (handler URL, auth block) of every application handler bound to an event.
AppTargets = Callable[[str], list[tuple[str, dict[str, Any]]]]


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class EventDispatcher:
    def __init__(
        self,
        config: EmulatorConfig,
        settings: Callable[[], EventSettings],
        clock: Callable[[], float],
        *,
        app_targets: AppTargets | None = None,
    ) -> None:
        self._config = config
        self._settings = settings
        self._clock = clock
        self._app_targets = app_targets
        self.log: deque[dict[str, Any]] = deque(maxlen=config.max_events)
        self._seq = 0
        self._queue: asyncio.Queue[_Pending] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None

    def form_pairs(
        self,
        event: str,
        data: dict[str, Any],
        application_token: str,
        ts: int,
        auth: dict[str, Any] | None = None,
    ) -> list[tuple[str, str]]:
        config = self._config
        envelope: dict[str, Any] = {
            "event": event,
            "event_handler_id": config.event_handler_id,
            "data": data,
            "ts": ts,
            "auth": auth
            or {
                "domain": config.portal_domain,
                "client_endpoint": config.client_endpoint,
                "server_endpoint": OAUTH_SERVER_ENDPOINT,
                "member_id": config.portal_member_id,
                "application_token": application_token,
            },
        }
        return flatten(envelope)

    def emit(self, event: str, data: dict[str, Any], *, app_only: bool = False) -> None:
        """Queue an event for the outgoing webhook (unless ``app_only``: an
        application's own event) and for every handler the installed
        application bound to it; must be called from the running loop."""
        if not app_only:
            self._emit_webhook(event, data)
        for url, auth in self._app_targets(event) if self._app_targets else ():
            settings = self._settings()
            self._seq += 1
            if not settings.events_enabled:
                self._lost(event, data, url, settings, "events_disabled", auth)
                continue
            self._ensure_worker().put_nowait(
                _Pending(self._seq, event, data, url, settings.sign_secret, "", auth=auth)
            )

    def _lost(
        self,
        event: str,
        data: dict[str, Any],
        url: str | None,
        settings: EventSettings,
        reason: str,
        auth: dict[str, Any] | None = None,
    ) -> None:
        ts = int(self._clock())
        self.log.append(
            {
                "seq": self._seq,
                "event": event,
                "url": url,
                "form": dict(self.form_pairs(event, data, settings.application_token, ts, auth)),
                "headers": {},
                "status": None,
                "error": reason,
                "delivered": False,
                "t": self._clock(),
            }
        )

    def _emit_webhook(self, event: str, data: dict[str, Any]) -> None:
        settings = self._settings()
        self._seq += 1
        if not settings.events_enabled or not settings.handler_url:
            reason = "events_disabled" if not settings.events_enabled else "no_handler_url"
            self._lost(event, data, settings.handler_url, settings, reason)
            return
        queue = self._ensure_worker()
        queue.put_nowait(
            _Pending(
                seq=self._seq,
                event=event,
                data=data,
                url=settings.handler_url,
                sign_secret=settings.sign_secret,
                application_token=settings.application_token,
            )
        )

    def _ensure_worker(self) -> asyncio.Queue[_Pending]:
        loop = asyncio.get_running_loop()
        if (
            self._queue is None
            or self._worker is None
            or self._worker.done()
            or self._loop is not loop
        ):
            self._queue = asyncio.Queue()
            self._loop = loop
            self._client = None
            self._worker = loop.create_task(self._run(self._queue), name="b24-emulator-events")
        return self._queue

    async def _run(self, queue: asyncio.Queue[_Pending]) -> None:
        while True:
            item = await queue.get()
            try:
                await self._deliver(item)
            except Exception as exc:  # the worker must outlive any single delivery
                self._record(item, {}, {}, None, f"{type(exc).__name__}: {exc}")
            finally:
                queue.task_done()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self._config.handler_transport,
                timeout=self._config.event_timeout_s,
                follow_redirects=False,
            )
        return self._client

    async def _deliver(self, item: _Pending) -> None:
        ts = int(self._clock())
        pairs = self.form_pairs(item.event, item.data, item.application_token, ts, item.auth)
        body = urlencode(pairs).encode()
        headers = {
            "content-type": "application/x-www-form-urlencoded",
            "user-agent": "Bitrix24 Webhook Engine",
        }
        if item.sign_secret:
            headers["x-request-id"] = str(uuid.uuid4())
            headers["x-request-timestamp"] = str(ts)
            headers["x-signature"] = sign(item.sign_secret, str(ts), body)
        form = dict(pairs)
        try:
            response = await self._http().post(item.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            self._record(item, form, headers, None, f"{type(exc).__name__}: {exc}".strip())
            return
        self._record(item, form, headers, response.status_code, None)

    def _record(
        self,
        item: _Pending,
        form: dict[str, str],
        headers: dict[str, str],
        status: int | None,
        error: str | None,
    ) -> None:
        self.log.append(
            {
                "seq": item.seq,
                "event": item.event,
                "url": item.url,
                "form": form,
                "headers": headers,
                "status": status,
                "error": error,
                "delivered": status is not None and 200 <= status < 300,
                "t": self._clock(),
            }
        )

    async def join(self) -> None:
        """Wait until every queued event has had its one delivery attempt."""
        if self._queue is not None and self._loop is asyncio.get_running_loop():
            await self._queue.join()

    def clear(self) -> None:
        """Forget the log and drop deliveries not yet attempted."""
        self.log.clear()
        if self._queue is not None:
            while not self._queue.empty():
                self._queue.get_nowait()
                self._queue.task_done()

    async def aclose(self) -> None:
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await self._worker
        self._worker = None
        self._queue = None
        if self._client is not None:
            with contextlib.suppress(RuntimeError):
                await self._client.aclose()
            self._client = None
